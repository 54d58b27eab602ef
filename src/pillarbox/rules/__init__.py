"""The domain rules every layer applies the same way, written once.

What a canonical address or domain name is, which mailbox names are acceptable, how a
new UIDVALIDITY is chosen and when a message is over quota: services apply them to
everything a client or an operator sends, and a store backend applies the two it must
evaluate inside its own transactions (UIDVALIDITY, quota) by calling these functions,
so two backends can never disagree. Pure functions of their arguments; no I/O, no
store, no protocol.

Must not import anything but the standard library, `pillarbox.model` and the `idna`
package (IDNA 2008, which the standard library does not implement).
"""
