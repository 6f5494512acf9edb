"""The review app's account pages: sign-in (throttled, a fresh session and CSRF token),
sign-out (ended in the store) and the admins' user list and new-user form."""

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from curation_assets.curation.review import decisions
from curation_assets.review_app.pages import SESSION_MAX_AGE, Pages
from curation_assets.review_app.security import new_csrf


class AccountPages(Pages):
    """Signing in and out, and managing users (admins only)."""

    async def login_page(self, request: Request) -> Response:
        if await self.user(request):
            return RedirectResponse("/review?queue=coverage", status_code=303)
        return self.render(request, "login.html")

    async def login(self, request: Request) -> Response:
        form = await self.checked_form(request, max_fields=10)
        name = str(form.get("username") or "").strip()
        password = str(form.get("password") or "")
        client = request.client.host if request.client else "-"
        attempt = await run_in_threadpool(self.throttle.begin, name, client)
        if attempt is None:  # reserved atomically: concurrent guesses are counted too
            return self.render(
                request, "login.html", 429, error="too many failed attempts: wait 5 minutes"
            )
        user = await run_in_threadpool(decisions.verify_password, self.store, name, password)
        if user is None:
            return self.render(request, "login.html", 401, error="wrong user name or password")
        await run_in_threadpool(self.throttle.succeeded, attempt, name, client)
        sid = await run_in_threadpool(
            decisions.create_session, self.store, user["username"], SESSION_MAX_AGE
        )
        request.session.clear()  # a fresh session (and CSRF token) for the signed-in user
        request.session.update(user=user["username"], sid=sid, csrf=new_csrf())
        return RedirectResponse("/review?queue=coverage", status_code=303)

    async def logout(self, request: Request) -> Response:
        await self.checked_form(request, max_fields=10)
        # ended in the store: a copy of the cookie signs nobody in any more
        await run_in_threadpool(decisions.end_session, self.store, request.session.get("sid"))
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    async def admin(self, request: Request, error: str | None = None) -> Response:
        user = await self.user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        if user["role"] != "admin":
            raise HTTPException(403, "admins only")
        users = await run_in_threadpool(decisions.list_users, self.store)
        status = 400 if error else 200
        return self.render(
            request,
            "admin.html",
            status,
            user=user,
            users=users,
            roles=decisions.ROLES,
            error=error,
        )

    async def add_user(self, request: Request) -> Response:
        user, form = await self.posted(request)
        if user["role"] != "admin":
            raise HTTPException(403, "admins only")
        try:
            await run_in_threadpool(
                decisions.add_user,
                self.store,
                str(form.get("username") or "").strip(),
                str(form.get("password") or ""),
                str(form.get("role") or ""),
            )
        except ValueError as exc:
            return await self.admin(request, error=str(exc))
        request.session["flash"] = "user added"
        return RedirectResponse("/admin", status_code=303)
