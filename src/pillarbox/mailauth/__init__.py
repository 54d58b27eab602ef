"""Mail authentication: SPF (RFC 7208), DKIM (RFC 6376, RFC 8463), DMARC (RFC 7489) and the
Authentication-Results field (RFC 8601), over an injected DNS resolver (`mailauth.dns`).

No policy lives here: `check.check_message` says what the checks found and what DMARC asks
for; services decide what to do with it.
"""
