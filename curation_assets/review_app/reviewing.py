"""The review app's reviewing pages: the next item of a queue (with its PII marked), the
empty-queue page, single and bulk decisions (recorded once per served page, with the
time the server measured) and the reviewer's own history."""

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from curation_assets.curation.review import decisions
from curation_assets.review_app import store
from curation_assets.review_app.pages import MAX_BULK, MAX_NOTE_CHARS, Pages


class ReviewPages(Pages):
    """Serving queue items and recording what reviewers decide about them."""

    async def review(self, request: Request) -> Response:
        user = await self.user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        queue = self.queue_of(request)
        required = self.settings.reviews_required
        wanted = request.query_params.get("example_id")
        if wanted:
            item = await run_in_threadpool(store.get_item, self.store, queue, wanted)
            if item is None:
                raise HTTPException(404, "no such item in this queue")
        else:
            items = await run_in_threadpool(store.next_items, self.store, user, queue, required)
            item = items[0] if items else None
        done = await run_in_threadpool(store.progress, self.store, user, queue, required)
        if item is None:
            return await self.nothing_left(request, user, queue, done)
        return self.render(
            request,
            "review.html",
            user=user,
            queue=queue,
            item=item,
            progress=done,
            token=self.tokens.issue(user["username"], queue, [item["example_id"]]),
            prompt_pieces=store.pii_segments(item["prompt"], item["pii"], "prompt"),
            response_pieces=store.pii_segments(item["response"], item["pii"], "response"),
            labels=self.labels,
            label_known=item["response"] in self.labels,
        )

    async def nothing_left(self, request: Request, user: dict, queue: str, done: dict) -> Response:
        """The empty-queue page: why each item is not offered to this user (counts by
        reason, adding up to the queue size), and where work is left."""
        required = self.settings.reviews_required
        why = await run_in_threadpool(store.standing, self.store, user, queue, required)
        elsewhere = []
        for other in decisions.QUEUES:
            if other != queue:
                left = await run_in_threadpool(store.progress, self.store, user, other, required)
                if left["left"]:
                    elsewhere.append((other, left["left"]))
        return self.render(
            request,
            "done.html",
            user=user,
            queue=queue,
            progress=done,
            standing=why,
            required=max(int(required), 1),
            elsewhere=elsewhere,
        )

    async def decide(self, request: Request) -> Response:
        user, form = await self.posted(request)
        payload, seconds = self.read_token(form, user)
        queue, example_id = payload["q"], payload["e"][0]
        kind = str(form.get("decision") or "")
        back = RedirectResponse(f"/review?queue={queue}", status_code=303)
        if kind == "skip":
            await run_in_threadpool(store.skip, self.store, user, queue, example_id)
            return back
        if kind not in decisions.DECISIONS:
            raise HTTPException(400, "decision must be accept, reject, edit or skip")
        extra: dict[str, Any] = {"note": str(form.get("note") or "").strip()[:MAX_NOTE_CHARS]}
        if kind == "edit":
            corrected = await self.corrected(form, queue, example_id)
            if corrected is None:
                kind = "accept"  # the "edit" keeps the label it had: that is an accept
            else:
                extra["corrected_response"] = corrected
        raw = self.decision(user, example_id, kind, seconds, **extra)
        await run_in_threadpool(self.record, [(f"{payload['n']}:{example_id}", raw)])
        request.session["flash"] = f"{kind}: {example_id}"
        return back

    async def corrected(self, form: Any, queue: str, example_id: str) -> str | None:
        """The corrected response of an edit (None: unchanged); refuses labels not allowed."""
        if self.classification:
            value = str(form.get("label") or "")
            if value not in self.labels:
                raise HTTPException(400, "that label is not in the allowed set")
        else:
            value = str(form.get("corrected_response") or "").strip()
            if not value:
                raise HTTPException(400, "an edit needs the corrected response")
        item = await run_in_threadpool(store.get_item, self.store, queue, example_id)
        return None if item is not None and item["response"] == value else value

    def record(self, submissions: list[tuple[str, dict]]) -> None:
        with store.connection(self.store) as con:
            decisions.record_submissions(con, submissions, origin="app")
            store.release(con, [(raw["reviewer"], raw["example_id"]) for _, raw in submissions])

    async def bulk_page(self, request: Request) -> Response:
        user = await self.user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        queue = self.queue_of(request)
        try:
            n = max(1, min(MAX_BULK, int(request.query_params.get("n", "20"))))
        except ValueError:
            n = 20
        required = self.settings.reviews_required
        items = await run_in_threadpool(store.next_items, self.store, user, queue, required, n)
        done = await run_in_threadpool(store.progress, self.store, user, queue, required)
        ids = [item["example_id"] for item in items]
        return self.render(
            request,
            "bulk.html",
            user=user,
            queue=queue,
            items=items,
            n=n,
            progress=done,
            token=self.tokens.issue(user["username"], queue, ids),
        )

    async def bulk(self, request: Request) -> Response:
        user, form = await self.posted(request)
        payload, seconds = self.read_token(form, user)
        kind = str(form.get("decision") or "")
        if kind not in ("accept", "reject"):
            raise HTTPException(400, "bulk decisions are accept or reject")
        chosen = [str(v) for v in form.getlist("example_id")]
        served = set(payload["e"])
        if not chosen:
            raise HTTPException(400, "select at least one item")
        if any(eid not in served for eid in chosen):
            raise HTTPException(400, "an item was not on the page you were served")
        chosen = list(dict.fromkeys(chosen))
        each = seconds / len(chosen)  # the page's time, shared by the items decided
        await run_in_threadpool(
            self.record,
            [(f"{payload['n']}:{eid}", self.decision(user, eid, kind, each)) for eid in chosen],
        )
        request.session["flash"] = f"{kind}: {len(chosen)} item(s)"
        return RedirectResponse(f"/bulk?queue={payload['q']}", status_code=303)

    async def history(self, request: Request) -> Response:
        user = await self.user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        rows = await run_in_threadpool(store.history, self.store, user["username"])
        return self.render(request, "history.html", user=user, rows=rows)
