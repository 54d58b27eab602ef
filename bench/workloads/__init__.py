"""The workload registry: one module per workload, one line per workload here.

To add a workload, write ``bench/workloads/<name>.py`` with a :class:`Workload` subclass
(see ``base.py``) and add it to ``WORKLOADS``. The order here is the order of a run; later
workloads see the mail that earlier ones left (the same on both sides).
"""

from __future__ import annotations

from bench.workloads.base import Context, Metric, Workload, WorkloadError
from bench.workloads.idle_fanout import IdleFanout, IdleFanoutScale
from bench.workloads.imap_mixed import ImapMixed
from bench.workloads.large_mailbox import LargeMailbox
from bench.workloads.login_heavy import LoginHeavy
from bench.workloads.pop3 import Pop3Download
from bench.workloads.smtp_ingest import SmtpIngest

WORKLOADS: dict[str, type[Workload]] = {
    cls.name: cls
    for cls in (
        SmtpIngest,
        LargeMailbox,
        ImapMixed,
        LoginHeavy,
        Pop3Download,
        IdleFanout,
        IdleFanoutScale,
    )
}

__all__ = ["WORKLOADS", "Context", "Metric", "Workload", "WorkloadError"]
