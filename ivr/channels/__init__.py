"""Text channels on the dialogue engine: web chat (``/chat``) and messaging platforms (signed webhooks).

:mod:`ivr.channels.session` runs one text conversation (the same :class:`~ivr.dialog.manager.DialogManager`, the
same record as a call); :mod:`ivr.channels.webhook` signs and checks platform messages and defines the adapter
interface. The HTTP routes are :mod:`ivr.web.chat` and :mod:`ivr.web.webhook`.
"""
