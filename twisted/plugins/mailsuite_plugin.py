"""twistd plugin: ``twistd -n mailsuite``.

This file ships in the wheel as ``twisted/plugins/mailsuite_plugin.py``
(there is deliberately no ``__init__.py`` in ``twisted/`` or
``twisted/plugins/``: Twisted's plugin system scans that namespace).
"""

from twisted.application.service import ServiceMaker

mailsuite = ServiceMaker(
    "mailsuite",
    "mailsuite.tap",
    "All-in-one mail server: SMTP, submission, POP3 and IMAP over one Maildir store",
    "mailsuite",
)
