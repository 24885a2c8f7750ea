"""Fixtures for tests that run at the same time: set up once per scope, shared, counted.

pytest's own fixture machinery (``FixtureDef.execute`` and ``SetupState``) assumes one
test at a time: a single cached value per fixture definition and a stack of active
nodes. Here each fixture *instance* is keyed by (definition, scope node, parameter
index), so two tests of different modules or parameters can hold different instances
at once. An instance is held by the tests and instances that requested it; it is torn
down when nothing holds it and no test planned to use it is still to come. The
fixture functions, their ordering (``names_closure``), overrides and parametrization
are pytest's own.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from _pytest.fixtures import FixtureRequest, get_scope_package, resolve_fixture_function
from _pytest.scope import Scope

from plait.cooperative import _capture, _patches

_NOTSET = object()


class _State:
    NEW, SETTING_UP, READY, FAILED, FINALIZED = range(5)


class Instance:
    """One set-up value of one fixture definition for one scope node and parameter."""

    def __init__(self, key: tuple[Any, ...], name: str, scope: Scope, node: Any, order: int):
        self.key = key
        self.name = name
        self.scope = scope
        self.node = node
        self.order = order
        self.state = _State.NEW
        self.value: Any = None
        self.error: BaseException | None = None
        self.ready: asyncio.Future[None] | None = None
        # Called last-in first-out at teardown: the fixture's own teardown, the
        # request.addfinalizer callbacks and the release of the instances it requested.
        self.finalizers: list[Callable[[], Any]] = []
        self.holders = 0

    def __repr__(self) -> str:
        return f"<fixture instance {self.name} {self.scope.value} {self.node!r}>"


class TestRun:
    """One attempt at one test: what it set up, in order."""

    __test__ = False

    def __init__(self, item: pytest.Item, output: _capture.TestOutput) -> None:
        self.item = item
        self.output = output
        self.values: dict[str, Any] = {}
        self.fixturedefs: dict[str, Any] = {}  # the definition behind each value
        # Function-scoped instances this attempt created (finalized even if they failed).
        self.owned: list[Instance] = []
        self.root = Instance(("item", id(item)), item.name, Scope.Function, item, -1)
        self.top = CooperativeRequest(self, None, Scope.Function, None, _NOTSET, 0, item, ())


class CooperativeRequest:
    """The ``request`` fixture in a cooperative test: pytest's public API, our lifetimes."""

    # pytest's own property getters; they only read the attributes defined below.
    function = FixtureRequest.function
    cls = FixtureRequest.cls
    instance = FixtureRequest.instance
    module = FixtureRequest.module
    path = FixtureRequest.path
    keywords = FixtureRequest.keywords
    session = FixtureRequest.session
    config = FixtureRequest.config

    def __init__(
        self,
        run: TestRun,
        fixturename: str | None,
        scope: Scope,
        fixturedef: Any,
        param: Any,
        param_index: int,
        node: Any,
        chain: tuple[CooperativeRequest, ...],
        instance: Instance | None = None,
    ) -> None:
        self._run = run
        self._pyfuncitem = run.item
        self.fixturename = fixturename
        self._scope = scope
        self._fixturedef = fixturedef
        if param is not _NOTSET:
            self.param = param
        self.param_index = param_index
        self._node = node
        self._chain = chain
        self._instance = instance

    @property
    def scope(self) -> str:
        return self._scope.value

    @property
    def node(self) -> Any:
        return self._node

    @property
    def fixturenames(self) -> list[str]:
        item: Any = self._pyfuncitem
        names = list(item.fixturenames)
        names.extend(n for n in self._run.values if n not in names)
        return names

    @property
    def _fixturemanager(self) -> Any:
        return self._pyfuncitem.session._fixturemanager

    def addfinalizer(self, finalizer: Callable[[], object]) -> None:
        target = self._instance if self._instance is not None else self._run.root
        target.finalizers.append(finalizer)

    def applymarker(self, marker: Any) -> None:
        self.node.add_marker(marker)

    def raiseerror(self, msg: str | None) -> Any:
        pytest.fail(msg or f"error in fixture {self.fixturename!r}", pytrace=False)

    @property
    def _fixture_defs(self) -> dict[str, Any]:
        return self._run.fixturedefs

    @property
    def _arg2fixturedefs(self) -> dict[str, Any]:
        item: Any = self._pyfuncitem
        return item._fixtureinfo.name2fixturedefs

    def _get_active_fixturedef(self, argname: str) -> Any:
        """pytest's internal lookup, used by some plugins (Hypothesis' health check)."""
        self.getfixturevalue(argname)
        return self._run.fixturedefs.get(argname)

    def getfixturevalue(self, argname: str) -> Any:
        """The value of ``argname``, set up now if needed.

        From synchronous code this can only set up fixtures that do not have to wait:
        an async fixture that awaits must be requested as an argument instead.
        """
        fixtures: Fixtures = self._pyfuncitem.session.stash[FIXTURES_KEY]
        coro = fixtures.get(self._run, argname, self._chain)
        return _run_without_waiting(coro, argname)

    def __repr__(self) -> str:
        return f"<CooperativeRequest {self.fixturename!r} for {self._pyfuncitem!r}>"


FIXTURES_KEY = pytest.StashKey["Fixtures"]()


def _run_without_waiting(coro: Coroutine[Any, Any, Any], argname: str) -> Any:
    __tracebackhide__ = True
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    pytest.fail(
        f"request.getfixturevalue({argname!r}) would have to wait for an async fixture; "
        "in a plait cooperative test, request it as a test or fixture argument instead.",
        pytrace=False,
    )


def _scope_node(item: pytest.Item, scope: Scope, fixturedef: Any) -> Any:
    if scope is Scope.Function:
        return item
    if scope is Scope.Class:
        return item.getparent(pytest.Class) or item
    if scope is Scope.Module:
        return item.getparent(pytest.Module) or item
    if scope is Scope.Package:
        return get_scope_package(item, fixturedef) or item.session
    return item.session


class Fixtures:
    """Every fixture instance of a cooperative run, with who holds it."""

    def __init__(self, session: pytest.Session) -> None:
        self.session = session
        self.instances: dict[tuple[Any, ...], Instance] = {}
        self.pending: Counter[tuple[Any, ...]] = Counter()
        self.planned: dict[int, list[tuple[Any, ...]]] = {}
        self.node_pending: Counter[Any] = Counter()
        self.node_finalizers: dict[Any, list[Callable[[], Any]]] = {}
        self.runs: dict[int, TestRun] = {}
        self.patches = _patches.PatchRegistry()
        self._order = 0
        self._params_memo: dict[tuple[int, int], tuple[tuple[str, int], ...]] = {}
        session.stash[FIXTURES_KEY] = self

    # -- planning -------------------------------------------------------------------

    def _lookup(self, item: Any, name: str, chain_names: list[str]) -> Any:
        defs = item._fixtureinfo.name2fixturedefs.get(name)
        if not defs:
            manager = self.session._fixturemanager
            try:
                defs = manager.getfixturedefs(name, item)
            except AttributeError:  # pytest 8.0 takes the node id
                defs = manager.getfixturedefs(name, item.nodeid)
        if not defs:
            return None
        index = -1 - chain_names.count(name)
        if -index > len(defs):
            return None
        return defs[index]

    def _key(
        self, item: Any, name: str, fixturedef: Any, chain: list[str]
    ) -> tuple[tuple[Any, ...], Any, Any]:
        """(instance key, scope, param) of ``fixturedef`` requested as ``name`` by item.

        The key holds the parameter indices of every parametrized fixture ``fixturedef``
        depends on (itself included): a module fixture that uses a parametrized one
        has one instance per parameter, as in pytest.
        """
        callspec = getattr(item, "callspec", None)
        if callspec is not None and name in callspec.params:
            param = callspec.params[name]
            scope = getattr(callspec, "_arg2scope", {}).get(name, fixturedef._scope)
        else:
            param, scope = _NOTSET, fixturedef._scope
        node = _scope_node(item, scope, fixturedef)
        params = self._params_closure(item, name, fixturedef, chain) if callspec else ()
        return (id(fixturedef), id(node), params), scope, param

    def _params_closure(
        self, item: Any, name: str, fixturedef: Any, chain: list[str]
    ) -> tuple[tuple[str, int], ...]:
        memo_key = (id(item), id(fixturedef))
        found = self._params_memo.get(memo_key)
        if found is not None:
            return found
        callspec = item.callspec
        params: set[tuple[str, int]] = set()
        seen: set[int] = set()
        stack = [(name, fixturedef, chain)]
        while stack:
            argname, definition, path = stack.pop()
            if id(definition) in seen:
                continue
            seen.add(id(definition))
            if argname in callspec.params:
                params.add((argname, callspec.indices[argname]))
            for arg in definition.argnames:
                if arg == "request":
                    continue
                sub = self._lookup(item, arg, [*path, argname])
                if sub is not None:
                    stack.append((arg, sub, [*path, argname]))
        result = self._params_memo[memo_key] = tuple(sorted(params))
        return result

    def plan(self, item: Any) -> None:
        """Count ``item`` as a future user of the wider-scoped instances it needs."""
        keys: dict[tuple[Any, ...], None] = {}

        def walk(name: str, chain: list[str]) -> None:
            if name == "request":
                return
            fixturedef = self._lookup(item, name, chain)
            if fixturedef is None:
                return
            key, scope, _ = self._key(item, name, fixturedef, chain)
            if key in keys:
                return
            if scope is not Scope.Function:
                keys[key] = None
            for arg in fixturedef.argnames:
                walk(arg, [*chain, name])

        for name in item._fixtureinfo.names_closure:
            walk(name, [])
        self.planned[id(item)] = list(keys)
        self.pending.update(list(keys))
        for node in item.listchain()[:-1]:
            self.node_pending[node] += 1

    # -- setup ----------------------------------------------------------------------

    async def setup(self, run: TestRun, concurrent: bool = False) -> None:
        """Set up every fixture the test needs, in pytest's order (``names_closure``).

        ``concurrent``: each fixture the test needs is set up in a task of its own, so
        independent async fixtures wait at the same time; one that requests another
        still waits for it (as two tests sharing a wider fixture do).
        """
        __tracebackhide__ = True
        item: Any = run.item
        self.runs[id(item)] = run
        item.funcargs = {}
        if concurrent:
            await self._setup_concurrently(run)
            return
        for name in item.fixturenames:
            if name not in item.funcargs:
                item.funcargs[name] = await self.get(run, name, ())

    async def _setup_concurrently(self, run: TestRun) -> None:
        __tracebackhide__ = True
        item: Any = run.item
        names = [n for n in dict.fromkeys(item.fixturenames) if n != "request"]
        # Tasks copy the test's context: output and log records stay the test's.
        tasks = {name: asyncio.ensure_future(self.get(run, name, ())) for name in names}
        if not tasks:
            return
        try:
            await asyncio.wait(tasks.values())
        except BaseException:
            # cancelled (a timeout, Ctrl-C): stop the fixtures still setting up, and
            # let the ones that finished be held, so the teardown releases them
            for task in tasks.values():
                task.cancel()
            await asyncio.wait(tasks.values())
            raise
        for task in tasks.values():  # the first error in pytest's order
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        for name, task in tasks.items():
            item.funcargs[name] = task.result()
        if "request" in item.fixturenames:
            item.funcargs["request"] = run.top

    async def get(self, run: TestRun, name: str, chain: tuple[CooperativeRequest, ...]) -> Any:
        """The value of fixture ``name`` for ``run``, requested through ``chain``."""
        __tracebackhide__ = True
        if name == "request":
            return chain[-1] if chain else run.top
        if name in run.values:
            return run.values[name]
        item: Any = run.item
        chain_names = [r.fixturename or "" for r in chain]
        fixturedef = self._lookup(item, name, chain_names)
        if fixturedef is None:
            pytest.fail(f"fixture {name!r} not found (requested by {item.nodeid})", pytrace=False)
        if name == "event_loop" and fixturedef.func.__module__.startswith("pytest_asyncio"):
            # pytest-asyncio (< 1.0) adds its event_loop fixture to async tests; here
            # the loop is the shared one.
            return asyncio.get_running_loop()
        key, scope, param = self._key(item, name, fixturedef, chain_names)
        requester = chain[-1] if chain else run.top
        if requester._scope > fixturedef._scope:
            pytest.fail(
                f"ScopeMismatch: You tried to access the {fixturedef._scope.value} scoped "
                f"fixture {name} with a {requester.scope} scoped request object.",
                pytrace=False,
            )
        instance = self.instances.get(key)
        if instance is None:
            node = _scope_node(item, scope, fixturedef)
            self._order += 1
            instance = self.instances[key] = Instance(key, name, scope, node, self._order)
            if scope is Scope.Function:
                run.owned.append(instance)
        holder = requester._instance if requester._instance is not None else run.root
        if instance.state == _State.NEW:
            callspec = getattr(item, "callspec", None)
            index = callspec.indices.get(name, 0) if callspec is not None else 0
            request = CooperativeRequest(
                run, name, scope, fixturedef, param, index, instance.node, (), instance
            )
            request._chain = (*chain, request)
            await self._setup_instance(run, instance, fixturedef, request)
        elif instance.state == _State.SETTING_UP:
            assert instance.ready is not None
            await asyncio.shield(instance.ready)
        if instance.state == _State.FAILED:
            assert instance.error is not None
            raise instance.error
        instance.holders += 1
        holder.finalizers.append(functools.partial(self._release, instance))
        run.values[name] = instance.value
        run.fixturedefs[name] = fixturedef
        return instance.value

    async def _setup_instance(
        self, run: TestRun, instance: Instance, fixturedef: Any, request: CooperativeRequest
    ) -> None:
        __tracebackhide__ = True
        instance.state = _State.SETTING_UP
        instance.ready = asyncio.get_running_loop().create_future()
        try:
            func = _unwrap_plugin_wrapper(resolve_fixture_function(fixturedef, request))  # type: ignore[arg-type]
            argnames = fixturedef.argnames
            if func is not fixturedef.func and not inspect.ismethod(func):
                wanted = inspect.signature(func).parameters
                argnames = tuple(a for a in argnames if a in wanted)
            kwargs = {}
            for arg in argnames:
                kwargs[arg] = await self.get(run, arg, request._chain)
            instance.value = await self._call(run, instance, fixturedef, func, kwargs)
        except BaseException as exc:
            if isinstance(exc, pytest.skip.Exception):
                exc._use_item_location = True
            if isinstance(exc, asyncio.CancelledError | GeneratorExit):
                error: BaseException = pytest.fail.Exception(
                    f"setup of fixture {instance.name!r} was interrupted "
                    f"(timeout or cancellation of {run.item.nodeid})",
                    pytrace=False,
                )
            else:
                error = exc
            instance.error = error
            instance.state = _State.FAILED
            raise
        else:
            instance.state = _State.READY
        finally:
            instance.ready.set_result(None)

    async def _call(
        self,
        run: TestRun,
        instance: Instance,
        fixturedef: Any,
        func: Any,
        kwargs: dict[str, Any],
    ) -> Any:
        __tracebackhide__ = True
        name = instance.name
        module = getattr(fixturedef.func, "__module__", "")
        if name in _capture.CAPTURE_FIXTURES and module == "_pytest.capture":
            capture = _capture.capture_fixture(name, run.output)
            instance.finalizers.append(functools.partial(_finish_generator, capture, name))
            return next(capture)
        if name == "monkeypatch" and module == "_pytest.monkeypatch":
            patch = _patches.monkeypatch_fixture(self.patches, run.item)
            instance.finalizers.append(functools.partial(_finish_generator, patch, name))
            return next(patch)
        if inspect.isasyncgenfunction(func):
            agen = func(**kwargs)
            try:
                value = await agen.__anext__()
            except StopAsyncIteration:
                raise ValueError(f"{name} did not yield a value") from None
            instance.finalizers.append(functools.partial(_finish_async_generator, agen, name))
            return value
        if inspect.iscoroutinefunction(func):
            return await func(**kwargs)
        if inspect.isgeneratorfunction(func):
            gen = func(**kwargs)
            try:
                value = next(gen)
            except StopIteration:
                raise ValueError(f"{name} did not yield a value") from None
            instance.finalizers.append(functools.partial(_finish_generator, gen, name))
            return value
        return func(**kwargs)

    # -- teardown -------------------------------------------------------------------

    async def _release(self, instance: Instance) -> None:
        __tracebackhide__ = True
        instance.holders -= 1
        if instance.holders <= 0 and self.pending[instance.key] <= 0:
            await self._finalize(instance)

    async def _finalize(self, instance: Instance) -> None:
        """Run ``instance``'s finalizers last-in first-out; raise what they raised."""
        __tracebackhide__ = True
        if instance.state in (_State.FINALIZED, _State.SETTING_UP):
            return
        instance.state = _State.FINALIZED
        if self.instances.get(instance.key) is instance:
            del self.instances[instance.key]
        errors: list[BaseException] = []
        while instance.finalizers:
            finalizer = instance.finalizers.pop()
            try:
                result = finalizer()
                if inspect.isawaitable(result):
                    await result
            except BaseExceptionGroup as group:
                errors.extend(group.exceptions)
            except (Exception, pytest.fail.Exception, pytest.skip.Exception) as exc:
                errors.append(exc)
        _raise_all(errors)

    async def teardown(self, run: TestRun, final: bool) -> None:
        """Tear down what ``run`` holds; on the test's last attempt, release its plan."""
        __tracebackhide__ = True
        item: Any = run.item
        errors: list[BaseException] = []
        if final:
            planned = self.planned.pop(id(item), [])
            for key in planned:
                self.pending[key] -= 1
        else:
            planned = []
        try:
            await self._finalize(run.root)
        except BaseExceptionGroup as group:
            errors.extend(group.exceptions)
        except BaseException as exc:
            if not isinstance(exc, Exception | pytest.fail.Exception | pytest.skip.Exception):
                raise
            errors.append(exc)
        for instance in reversed(run.owned):
            if instance.state in (_State.READY, _State.FAILED) and instance.holders <= 0:
                try:
                    await self._finalize(instance)
                except BaseExceptionGroup as group:
                    errors.extend(group.exceptions)
                except Exception as exc:
                    errors.append(exc)
        if not final:
            # A rerun sets up again what failed, as pytest-rerunfailures does.
            for key in self.planned.get(id(item), []):
                failed = self.instances.get(key)
                if failed is not None and failed.state == _State.FAILED:
                    if failed.holders <= 0:
                        try:
                            await self._finalize(failed)
                        except BaseExceptionGroup as group:
                            errors.extend(group.exceptions)
                        except Exception as exc:
                            errors.append(exc)
        if final:
            # Wider instances this test planned to use but never held (a skip, a failed
            # setup) may now have no future user.
            leftovers = [self.instances[k] for k in planned if k in self.instances]
            for instance in sorted(leftovers, key=lambda i: -i.order):
                if instance.holders <= 0 and self.pending[instance.key] <= 0:
                    try:
                        await self._finalize(instance)
                    except BaseExceptionGroup as group:
                        errors.extend(group.exceptions)
                    except Exception as exc:
                        errors.append(exc)
            for node in reversed(item.listchain()[:-1]):
                self.node_pending[node] -= 1
                if self.node_pending[node] <= 0:
                    errors.extend(_run_finalizers(self.node_finalizers.pop(node, [])))
            self.runs.pop(id(item), None)
        _raise_all(errors)

    def forget(self, item: Any) -> None:
        """``item`` will not run (-x, interrupt): it no longer counts as a future user."""
        planned = self.planned.pop(id(item), None)
        if planned is None:
            return
        for key in planned:
            self.pending[key] -= 1
        for node in item.listchain()[:-1]:
            self.node_pending[node] -= 1

    async def close(self) -> None:
        """Tear down whatever is left (tests that never ran), widest last."""
        __tracebackhide__ = True
        errors: list[BaseException] = []
        for instance in sorted(self.instances.values(), key=lambda i: -i.order):
            if instance.state in (_State.READY, _State.FAILED):
                try:
                    await self._finalize(instance)
                except BaseExceptionGroup as group:
                    errors.extend(group.exceptions)
                except Exception as exc:
                    errors.append(exc)
        for node in list(self.node_finalizers):
            errors.extend(_run_finalizers(self.node_finalizers.pop(node)))
        _raise_all(errors)

    def add_node_finalizer(self, node: Any, finalizer: Callable[[], object]) -> None:
        run = self.runs.get(id(node))
        if run is not None:
            run.root.finalizers.append(finalizer)
        else:
            self.node_finalizers.setdefault(node, []).append(finalizer)


def _run_finalizers(finalizers: list[Callable[[], Any]]) -> list[BaseException]:
    errors: list[BaseException] = []
    while finalizers:
        try:
            finalizers.pop()()
        except (Exception, pytest.fail.Exception, pytest.skip.Exception) as exc:
            errors.append(exc)
    return errors


def _raise_all(errors: list[BaseException]) -> None:
    __tracebackhide__ = True
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise BaseExceptionGroup("errors during test teardown", errors)


def _finish_generator(gen: Any, name: str) -> None:
    __tracebackhide__ = True
    try:
        next(gen)
    except StopIteration:
        return
    pytest.fail(f"fixture function {name!r} has more than one 'yield'", pytrace=False)


async def _finish_async_generator(agen: Any, name: str) -> None:
    __tracebackhide__ = True
    try:
        await agen.__anext__()
    except StopAsyncIteration:
        return
    pytest.fail(f"fixture function {name!r} has more than one 'yield'", pytrace=False)


def _unwrap_plugin_wrapper(func: Any) -> Any:
    """The async fixture function under pytest-asyncio's (< 0.24) synchronous wrapper.

    Older pytest-asyncio replaces async fixture functions at collection time with sync
    wrappers that drive its own loop; on plait's running loop they cannot run, so the
    original coroutine function is called instead.
    """
    bound = getattr(func, "__self__", None) if inspect.ismethod(func) else None
    plain = func.__func__ if bound is not None else func
    wrapped = getattr(plain, "__wrapped__", None)
    code = getattr(plain, "__code__", None)
    if (
        wrapped is None
        or code is None
        or not str(getattr(plain, "__module__", "")).startswith("pytest_asyncio")
        or not (inspect.iscoroutinefunction(wrapped) or inspect.isasyncgenfunction(wrapped))
    ):
        return func
    return wrapped.__get__(bound) if bound is not None else wrapped


class SetupStateShim:
    """Stands in for ``session._setupstate`` while cooperative tests run.

    pytest's runtest hooks call it; node setup and teardown are done by
    :class:`Fixtures`, and ``node.addfinalizer`` lands there too.
    """

    def __init__(self, fixtures: Fixtures) -> None:
        self._fixtures = fixtures
        self.stack: dict[Any, Any] = {}

    def setup(self, item: Any) -> None:
        pass

    def teardown_exact(self, nextitem: Any) -> None:
        pass

    def is_node_active(self, node: Any) -> bool:
        return True

    def addfinalizer(self, finalizer: Callable[[], object], node: Any) -> None:
        self._fixtures.add_node_finalizer(node, finalizer)
