"""Whether new mail is spam for a mailbox, from the headers a spam filter added.

A score (``X-Spam-Score``, else ``X-Rspamd-Score``) is compared with the mailbox's own
``spam_threshold``: a score at or above it is spam. Only without a readable score does
``X-Spam-Flag: YES`` decide, because the flag encodes the filter's threshold and the user's
own threshold should win where both exist. A mailbox with ``spam_enabled`` off gets
everything in its inbox. The MTA in front must strip these headers from mail arriving from
outside before its own filter adds them; otherwise a sender could set them.
"""

from __future__ import annotations


def is_spam(*, spam_enabled: bool, threshold: float, score: float | None, flag: bool | None) -> bool:
    if not spam_enabled:
        return False
    if score is not None:
        return score >= threshold
    return flag is True
