"""What a job's change tells subscribers: the inquiry's tracking code and its new status,
published on the app's loop whichever thread the job ran on (gateway/edge/work.py)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from gateway.edge.work import ProcessJobs
from gateway.events import Events, listening
from gateway.inquiries.workflow import INQUIRY_UPDATED, InquiryChanged
from gateway.settings import Settings

CODE = "1234567890123452"
WAIT_S = 10  # a safety net against a hang, never a measure


async def _first(events: Events, code: str) -> InquiryChanged:
    async for event in events.listen(INQUIRY_UPDATED, code):
        return event
    raise AssertionError("the events ended")


async def test_a_change_made_by_a_job_on_another_thread_carries_its_status(
    tmp_path: Path,
) -> None:
    jobs = ProcessJobs(Settings(data_dir=tmp_path))
    events = Events()
    jobs.notify_through(events)
    started = asyncio.Event()
    token = listening.set(started)  # the listener's task copies it, and sets it once listening
    heard = asyncio.create_task(_first(events, CODE))
    listening.reset(token)
    async with asyncio.timeout(WAIT_S):
        await started.wait()
    # As a job does, from DBOS's thread: the event is handed to this loop.
    job = threading.Thread(target=jobs.runtime.notify, args=(CODE, "WAITING_FOR_DEPARTMENT"))
    job.start()
    job.join()
    async with asyncio.timeout(WAIT_S):
        assert await heard == InquiryChanged(CODE, "WAITING_FOR_DEPARTMENT")
