"""The email connector: IMAP in (IDLE, else polled), SMTP out, both from the standard
library. ``manifest`` and ``config`` are dependency-free.

Errors: the IDLE watcher raises :class:`~connectors.email.idle.ImapError`; everything a
mailbox connection can raise is :data:`~connectors.email.imap.MAILBOX_ERRORS`, put into
words by :func:`~connectors.email.imap.failure`; ``send`` raises only
:class:`~nexflow.gateway.connector.DeliveryError`;
:class:`~connectors.email.attachments.FileRefused` is an outbound file that can never go.
"""
