"""Services: the only home of policy (auth, delivery, submission, mailbox views).

Front-ends call these; these call the store through `store.api` only, never a
concrete backend, and never a front-end.
"""
