"""The console's routes for the flow heat map and the calls' timelines (the pages are built by
:mod:`ivr.console.pages`, the figures read by :mod:`ivr.console.records`).

| path | what |
|---|---|
| ``/flows`` | every flow, with the calls that started in it on a day |
| ``/flows/FLOW`` | the heat map (``day``, ``by``, ``qa``, ``find``) |
| ``/api/flows/FLOW`` | its figures and prompts as JSON |
| ``/calls`` | recent calls and a search (``q``, ``outcome``, ``flow``, ``day``) |
| ``/api/calls`` | the same as JSON |
| ``/calls/ID``, ``/api/calls/ID`` | a call's timeline |
| ``/calls/ID/recordings/N`` | the call's N-th recording (audio/wav) |

Every one needs a session like the wallboard (viewers may look; nothing here changes
anything). QA calls (``ivr test --store``, live QA calls) are left out of the heat map by
default, as ``ivr report`` leaves them out of production figures; ``qa=1`` counts them too.
The call list shows them, marked.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from aiohttp import web

from ivr.console import pages, records, timeline
from ivr.console.app import SOURCE_KEY, _session
from ivr.console.flowcache import FlowCache
from ivr.console.flowmap import METRICS, Traffic, found_nodes, prompt_texts
from ivr.console.refusal import refuse
from ivr.flow.model import Flow, FlowSet, SubflowNode

FLOWS_KEY: web.AppKey[FlowCache] = web.AppKey("flows", FlowCache)


def add_routes(app: web.Application) -> None:
    """Add the heat map's and the timelines' routes to the console's ``app``."""
    app[FLOWS_KEY] = FlowCache(app[SOURCE_KEY].config)
    app.router.add_get("/flows", flows_index)
    app.router.add_get("/flows/{flow}", flow_page)
    app.router.add_get("/api/flows/{flow}", flow_api)
    app.router.add_get("/calls", call_list)
    app.router.add_get("/api/calls", call_list_api)
    app.router.add_get("/calls/{call}", call_page)
    app.router.add_get("/api/calls/{call}", call_api)
    app.router.add_get("/calls/{call}/recordings/{number}", recording)


def recordings_dir(request: web.Request) -> Path:
    """Where ``record`` nodes write (the engine host's ``recordings_dir``: var/recordings
    beside ivr.yaml); the only folder a recording is served from."""
    return request.app[SOURCE_KEY].config.root / "var" / "recordings"


def _page(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, content_type="text/html", status=status)


def _need_page(request: web.Request) -> None:
    if _session(request) is None:
        raise web.HTTPSeeOther("/login")


def _need_api(request: web.Request) -> web.Response | None:
    return refuse(401, "log in first") if _session(request) is None else None


def _store(request: web.Request) -> Path:
    return request.app[SOURCE_KEY].config.store_path


async def _flows(request: web.Request) -> tuple[FlowSet | None, int]:
    cache = request.app[FLOWS_KEY]
    flows = await asyncio.to_thread(cache.current)
    return flows, cache.errors


def _options(request: web.Request) -> tuple[str, str, bool, str]:
    """(day, figure, QA included, search) from the query; a bad day or figure: 400."""
    q = request.query
    try:
        day = records.day_bounds(q.get("day", "")[:10])
    except ValueError:
        raise web.HTTPBadRequest(text="day must be an ISO date (YYYY-MM-DD)") from None
    metric = q.get("by", "visits")
    if metric not in METRICS:
        raise web.HTTPBadRequest(text=f"by must be one of {', '.join(METRICS)}")
    return day, metric, q.get("qa", "") in ("1", "on", "true"), q.get("find", "")[:100]


# --- flows ------------------------------------------------------------------------------------


async def flows_index(request: web.Request) -> web.StreamResponse:
    _need_page(request)
    day, _metric, qa, _find = _options(request)
    flows, errors = await _flows(request)
    calls = await asyncio.to_thread(records.flow_calls, _store(request), day, qa)
    return _page(pages.flows_index(flows.flows if flows else {}, calls, day, qa, errors))


async def _flow_and_traffic(request: web.Request) -> tuple[Flow, dict[str, Traffic], int]:
    flows, errors = await _flows(request)
    flow_id = request.match_info["flow"]
    if flows is None or flow_id not in flows.flows:
        raise web.HTTPNotFound(text="no such flow")
    day, _metric, qa, _find = _options(request)
    traffic = await asyncio.to_thread(records.flow_traffic, _store(request), flow_id, day, qa)
    return flows.flows[flow_id], traffic, errors


async def flow_page(request: web.Request) -> web.StreamResponse:
    _need_page(request)
    flow, traffic, errors = await _flow_and_traffic(request)
    day, metric, qa, find = _options(request)
    branches = await asyncio.to_thread(records.flow_branches, _store(request), flow.id, day, qa)
    return _page(pages.flow_page(flow, traffic, day=day, metric=metric, qa=qa, find=find,
                                 errors=errors, branches=branches,
                                 now=await _calls_now(request, flow.id)))  # fmt: skip


async def _calls_now(request: web.Request, flow_id: str) -> dict[str, int]:
    """Calls at each node of ``flow_id`` now: as many of the store's newest unended calls as
    the engine metrics count in progress, by the node (of its own flow) each is at. (The
    metrics' node label is of the flow the call started in, which a sub-flow's node is not.)"""
    active, _where = request.app[SOURCE_KEY].calls()
    live = await asyncio.to_thread(records.live_calls, _store(request), active)
    return dict(Counter(c["node"] for c in live if c["node_flow"] == flow_id and c["node"]))


async def flow_api(request: web.Request) -> web.StreamResponse:
    refused = _need_api(request)
    if refused is not None:
        return refused
    flow, traffic, errors = await _flow_and_traffic(request)
    day, _metric, qa, find = _options(request)
    found = found_nodes(flow, find)
    nodes = []
    for node_id, node in flow.nodes.items():
        t = traffic.get(node_id, Traffic())
        nodes.append({"id": node_id, "kind": node.kind, "visits": t.visits, "calls": t.calls,
                      "no_input": t.no_input, "no_match": t.no_match, "ended": t.ended,
                      "hangups": t.hangups, "found": node_id in found,
                      "subflow": node.flow if isinstance(node, SubflowNode) else None,
                      "targets": [{"label": lbl, "target": tgt}
                                  for lbl, tgt, _ in node.targets()],
                      "prompts": [{"id": pid, "text": texts}
                                  for pid, texts in prompt_texts(node)]})
    gone = {n: t.visits for n, t in traffic.items() if n not in flow.nodes}
    return web.json_response({"flow": flow.id, "day": day, "include_qa": qa, "start": flow.start,
                              "languages": list(flow.languages), "nodes": nodes,
                              "gone_nodes": gone, "flow_errors": errors})  # fmt: skip


# --- calls ------------------------------------------------------------------------------------


def _call_query(request: web.Request) -> tuple[records.CallQuery, dict[str, str]]:
    q = request.query
    form = {k: q.get(k, "")[:64] for k in ("q", "outcome", "flow", "day")}
    if form["day"]:
        try:
            records.day_bounds(form["day"])
        except ValueError:
            raise web.HTTPBadRequest(text="day must be an ISO date (YYYY-MM-DD)") from None
    try:
        limit = int(q.get("limit", "50"))
    except ValueError:
        limit = 50
    query = records.CallQuery(form["q"].strip(), form["outcome"], form["flow"], form["day"],
                              q.get("qa", "1") != "0", limit)  # fmt: skip
    return query, form


async def call_list(request: web.Request) -> web.StreamResponse:
    _need_page(request)
    query, form = _call_query(request)
    store = _store(request)
    calls = await asyncio.to_thread(records.find_calls, store, query)
    known = await asyncio.to_thread(records.outcomes, store)
    return _page(pages.call_list(calls, form, known))


async def call_list_api(request: web.Request) -> web.StreamResponse:
    refused = _need_api(request)
    if refused is not None:
        return refused
    query, _form = _call_query(request)
    return web.json_response({"calls": await asyncio.to_thread(records.find_calls,
                                                               _store(request), query)})


async def _timeline(request: web.Request) -> records.Timeline:
    call_id = request.match_info["call"][:200]
    found = await asyncio.to_thread(records.timeline, _store(request), call_id)
    if found is None:
        raise web.HTTPNotFound(text="no such call")
    return found


async def call_page(request: web.Request) -> web.StreamResponse:
    _need_page(request)
    record = await _timeline(request)
    return _page(pages.timeline_page(record.call, timeline.rows(record), record.truncated))


async def call_api(request: web.Request) -> web.StreamResponse:
    refused = _need_api(request)
    if refused is not None:
        return refused
    record = await _timeline(request)
    return web.json_response({"call": record.call, "truncated": record.truncated,
                              "events": [r.as_dict() for r in timeline.rows(record)]})  # fmt: skip


async def recording(request: web.Request) -> web.StreamResponse:
    """The call's N-th recording: the path is the store's, checked to lie in the recordings
    folder; nothing of the request but the call id and the number is used."""
    refused = _need_api(request)
    if refused is not None:
        return refused
    try:
        number = int(request.match_info["number"])
    except ValueError:
        raise web.HTTPNotFound() from None
    call_id = request.match_info["call"][:200]
    path = await asyncio.to_thread(records.recording_path, _store(request), call_id, number,
                                   recordings_dir(request))  # fmt: skip
    if path is None:
        raise web.HTTPNotFound(text="no such recording")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav",
                                           "Content-Disposition": "inline"})  # fmt: skip
