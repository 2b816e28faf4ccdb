"""The email connector: IMAP in (polled), SMTP out, both from the standard library.
``manifest`` and ``config`` are dependency-free."""
