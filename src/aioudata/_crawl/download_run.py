"""``run_downloads``: the check's scheduler (queues, limits, back-off and breaker per host)
fetching files instead of asking about them."""

from __future__ import annotations

from .._display import Speed
from .download_config import (
    DownloadConfig,
    DownloadProgress,
    DownloadProgressCallback,
    DownloadSummary,
)
from .download_store import DownloadStore
from .fetch import DownloadJob, Fetched, Fetcher, TransferCut
from .hosts import HostState, Job
from .probe import Answer
from .results import FileResult, Outcome
from .run import Reporter, drive, opened, tally
from .scheduler import Scheduler, detail
from .urls import classify

__all__ = ["DownloadScheduler", "run_downloads"]


class DownloadScheduler(Scheduler):
    """Downloads every file of the frontier: a cut transfer is tried again (resuming) up to
    ``attempts`` times, under its host's limits like any request."""

    config: DownloadConfig
    prober: Fetcher
    #: Files resumed with Range, and fetched again from zero.
    resumed = 0
    refetched = 0

    def _judge(
        self,
        host: HostState,
        job: Job,
        answer: Answer | None,
        error: Exception | None,
        end: float,
    ) -> Outcome | None:
        if not isinstance(error, TransferCut):
            return super()._judge(host, job, answer, error, end)
        assert isinstance(job, DownloadJob)
        host.failed(end, job.started, self.config)
        job.attempts += 1
        if job.attempts < self.config.attempts and host.down is None:
            self._again(host, job)  # resumes from what was written
            return None
        file = FileResult("incomplete", detail=detail(error))
        return self._outcome(job, error=classify(error.cause), detail=detail(error), file=file)

    def _answered(self, job: Job, answer: Answer, size: int | None) -> Outcome:
        outcome = super()._answered(job, answer, size)
        if isinstance(answer, Fetched):
            outcome.file = answer.file
        return outcome

    async def _record(self, job: Job, outcome: Outcome) -> None:
        await super()._record(job, outcome)
        if outcome.file is not None:
            self.resumed += outcome.file.resumed_from > 0
            self.refetched += outcome.file.refetched


async def run_downloads(
    config: DownloadConfig | None = None,
    *,
    progress: DownloadProgressCallback | None = None,
    interval: float = 1.0,
) -> DownloadSummary:
    """Download the files of the selected resources into ``config.dir`` and record each
    result in ``config.db``; what the run did.

    Each file is streamed to a part file, resumed with ``Range`` where the server allows,
    verified against its published checksum, then renamed to its name. Files whose published
    checksum is the one of the file already there are not requested. A run stopped in any
    way is resumed by the next one with the same options; one stopped because the disk is
    nearly full ends with ``status == "no_space"``.

    Raises:
        CheckError: the database is another application's, or another run holds it.
    """
    config = config or DownloadConfig()
    async with opened(config, DownloadStore) as run, Fetcher(config) as fetcher:
        summary = DownloadSummary(
            database=str(config.db),
            dir=str(config.dir),
            source=run.source,
            run_id=run.run_id,
            resumed_run=run.resumed,
            total=sum(run.hosts.values()),
            skipped=run.store.skipped(),
        )
        scheduler = DownloadScheduler(
            config, run.store, fetcher, run.hosts, run.store.blocked_hosts()
        )
        # A file's slot is not held while its row waits for the group commit: at loopback
        # speed that wait is longer than the transfer. A kill -9 may then fetch again up to
        # twice the files in flight (each is whole on disk or a part: never wrong).
        scheduler.commit_slack = config.concurrency

        async def finish(status: str, stopped: str | None) -> None:
            summary.status, summary.stopped = status, stopped  # type: ignore[assignment]
            summary.done = scheduler.done
            summary.bytes = fetcher.received
            summary.resumed, summary.refetched = scheduler.resumed, scheduler.refetched
            tally(summary, scheduler, run.began)
            await run.store.finish_run(status, summary.to_dict())

        reporter = _DownloadReporter(scheduler, progress, run.began) if progress else None
        await drive(scheduler, reporter, interval, finish)
    return summary


class _DownloadReporter(Reporter[DownloadProgress]):
    scheduler: DownloadScheduler

    def __init__(self, scheduler: Scheduler, callback: DownloadProgressCallback, began: float):
        super().__init__(scheduler, callback, began)
        self.bytes = Speed()

    def build(
        self, now: float, rate: float | None, eta: float | None, final: bool
    ) -> DownloadProgress:
        scheduler = self.scheduler
        received = scheduler.prober.received
        self.bytes.sample(now, received)
        return DownloadProgress(
            total=scheduler.total,
            done=scheduler.done,
            files=scheduler.kinds.get("downloaded", 0),
            bytes=received,
            mismatches=scheduler.kinds.get("mismatch", 0),
            in_flight=scheduler.in_flight,
            elapsed=now - self.began,
            bytes_per_second=self.bytes.rate(),
            files_per_second=rate,
            eta=eta,
            final=final,
            **self.hosts(),
        )
