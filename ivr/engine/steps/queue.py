"""The enqueue node: the caller waits on the line for an agent (docs/ACD.md, "The caller's side").

The step joins the queue as soon as the node is entered (the caller's place counts from then),
plays the node's greeting, then hold music, looped. Position and expected wait are announced
after the greeting and then every ``announce.every`` seconds when either changed, never closer
than ``announce.min_interval``; a ``message`` repeats on its own timer. Announcing stops the music
and starts it again afterwards.

The queue asks the step to ring agents (:meth:`on_offer`); the channel rings and bridges, and
each leg's outcome goes back to the queue. Keys the node gives exits to leave the line at once
(``callback`` keeps the place and ends the call; the queue calls back). An exit the queue takes
(``max_wait``, ``no_agents``, ``full``) goes to the node the flow names, or ends the call as
``unanswered``. Once an agent answers, the caller is with the agent: the step waits for the
bridged call to end, then goes to ``after`` (a survey) or ends the call as ``agent``.
"""

from __future__ import annotations

from ivr.core import events as ev
from ivr.engine.queueing import (
    ANSWERED,
    ENDED,
    HANDED_OFF,
    AgentOffer,
    QueuePlace,
    QueueRequest,
)
from ivr.engine.steps.base import Step
from ivr.engine.values import compute
from ivr.flow.expr import ExprError
from ivr.flow.model import CALLBACK, EnqueueNode
from ivr.flow.render import HOLD_MUSIC, RenderedPrompt
from ivr.flow.sayas import say_number

NO_QUEUE = "no_queue"  # the exit when this process has no agent queue at all
# What a waiting caller is told, per language (English for any other).
WORDS = {
    "en": {"next": "You are next in line.", "position": "You are number {n} in line.",
           "wait": "Your expected wait is about {m} {minutes}.",
           "over": "Your expected wait is more than {m} minutes.",
           "callback": "Thank you. We will call you back. Goodbye."},
    "zh": {"next": "您是下一位。", "position": "您现在排在第{n}位。",
           "wait": "预计等待约{m}分钟。", "over": "预计等待超过{m}分钟。",
           "callback": "谢谢，我们稍后给您回电。再见。"},
}  # fmt: skip
EXIT_LABELS = {"max_wait": "on_max_wait", "no_agents": "on_no_agents", "full": "on_full",
               NO_QUEUE: "on_no_agents"}  # fmt: skip
CAP_MINUTES = 15


def spoken_minutes(seconds: float) -> tuple[int, bool]:
    """Whole minutes, rounded up (never promise less than the estimate), and whether the wait
    is past what can honestly be promised."""
    minutes = max(1, -(-int(seconds) // 60))
    return (CAP_MINUTES, True) if minutes > CAP_MINUTES else (minutes, False)


class QueueStep(Step[EnqueueNode]):
    """A caller in an agent queue (see the module docstring)."""

    def start(self) -> None:
        self.place: QueuePlace | None = None
        self.offers: dict[int, AgentOffer] = {}
        self.agent: AgentOffer | None = None
        self.joined_at = self.session.clock.now()
        self.connected_at = 0.0
        self.greeting = self.node.prompt is not None
        self.announced: tuple[int | None, int | None] = (None, None)
        self.last_announce = float("-inf")
        self.announcing = False
        self.callback = False
        request = self._request()
        if request is None:
            return
        queues = self.session.runtime.queues
        joined = NO_QUEUE if queues is None else queues.join(self.session.call_id, request, self)
        self.session.emit(ev.QUEUE, queue=request.queue, priority=request.priority,
                          skills=list(request.skills), tier=request.tier)  # fmt: skip
        self.session.queued_at = self.joined_at
        if isinstance(joined, str):
            self.on_queue_exit(joined)
            return
        self.place = joined
        if self.greeting:
            self.session.play(self.node.prompt, barge_in=False)  # type: ignore[arg-type]
        else:
            self._waiting()

    def _request(self) -> QueueRequest | None:
        scope = self.session.scope.values
        try:
            priority = int(compute(self.node.priority, scope))
        except (ExprError, TypeError, ValueError) as exc:
            self.session.fail(f"enqueue {self.node.id}: priority: {exc}")
            return None
        return QueueRequest(self.node.queue, max(0, min(10, priority)), self.node.skills,
                            self.session.language, self.node.tier,
                            self.session.channel.info.caller)  # fmt: skip

    # --- waiting --------------------------------------------------------------------------

    def _waiting(self) -> None:
        """After the greeting: announce, then hold music; the timers start."""
        announce = self.node.announce
        if announce.position or announce.wait:
            self.later(announce.every, self._announce_timer)
        if self.node.message is not None:
            self.later(self.node.message.every, self._message_timer)
        self._announce(or_music=True)

    def _music(self) -> None:
        if self.agent is not None or self.cancelled:
            return
        self.announcing = False
        self.session.play_rendered(RenderedPrompt(
            "hold_music", self.session.language, "", self.node.hold_music or HOLD_MUSIC,
            barge_in=False, loop=True))  # fmt: skip

    def on_prompts_done(self) -> None:
        if self.callback:
            self.session.finish("callback_requested", hangup=True)
            return
        if self.agent is not None:
            return
        if self.greeting:
            self.greeting = False
            self._waiting()
        elif self.announcing:
            self._music()

    def _announce_timer(self) -> None:
        self.later(self.node.announce.every, self._announce_timer)
        self._announce()

    def _message_timer(self) -> None:
        message = self.node.message
        assert message is not None
        self.later(message.every, self._message_timer)
        if self.agent is None and not self.greeting and not self.announcing:
            self.announcing = True
            self.session.stop_prompts()
            self.session.play(message.prompt, barge_in=False)

    def _announce(self, or_music: bool = False) -> None:
        """Ask the queue for position and wait; say them when they changed and the minimum
        interval has passed (else, with ``or_music``, start the music)."""
        place, announce = self.place, self.node.announce
        now = self.session.clock.now()
        quiet = self.agent is not None or self.greeting or self.announcing
        if place is None or quiet or now - self.last_announce < announce.min_interval:
            if or_music:
                self._music()
            return
        place.figures(lambda position, wait: self._say_figures(position, wait, or_music))

    def _say_figures(self, position: int | None, wait: float | None, or_music: bool) -> None:
        announce = self.node.announce
        if self.cancelled or self.place is None or self.agent is not None or self.announcing:
            return
        position = position if announce.position else None
        wait = wait if announce.wait else None
        minutes = spoken_minutes(wait) if wait is not None else None
        figures = (position, minutes[0] if minutes else None)
        if figures == self.announced or figures == (None, None):
            if or_music:
                self._music()
            return
        words = WORDS.get(self.session.language, WORDS["en"])
        zh = self.session.language == "zh"
        parts = []
        if position is not None:
            n = say_number(position, zh=zh)
            parts.append(words["next"] if position == 1 else words["position"].format(n=n))
        if minutes is not None:
            m, over = minutes
            parts.append(words["over" if over else "wait"].format(
                m=say_number(m, zh=zh), minutes="minute" if m == 1 else "minutes"))
        self.announced, self.last_announce = figures, self.session.clock.now()
        self.announcing = True
        self.session.stop_prompts()
        self.session.emit(ev.QUEUE_ANNOUNCE, position=position, minutes=figures[1],
                          over=bool(minutes and minutes[1]))  # fmt: skip
        self.session.play_rendered(RenderedPrompt("queue_announcement", self.session.language,
                                                  " ".join(parts), barge_in=False))  # fmt: skip

    # --- the queue ------------------------------------------------------------------------

    def on_offer(self, offer: AgentOffer) -> None:
        if self.cancelled or self.agent is not None:
            return
        self.offers[offer.id] = offer
        whisper = None
        if self.node.whisper:
            whisper = str(compute(self.node.whisper, self.session.scope.masked()))
        self.session.emit(ev.AGENT_RING, agent=offer.agent)
        self.session.channel.ring_agent(AgentOffer(offer.id, offer.agent, offer.contact,
                                                   offer.ring_timeout, whisper,
                                                   self.session.language))  # fmt: skip

    def on_withdraw(self, offer_id: int) -> None:
        if self.offers.pop(offer_id, None) is not None:
            self.session.channel.stop_agent(offer_id)

    def on_queue_exit(self, reason: str) -> None:
        if self.cancelled or self.agent is not None:
            return
        self._stop_ringing()
        self.place = None
        if reason == HANDED_OFF:  # still in a queue, Asterisk's: no exit, no hang-up here
            self.session.queued_at = None
            self.session.finish(HANDED_OFF)
            return
        self.session.emit(ev.QUEUE_EXIT, reason=reason, queue_wait=self._wait())
        self.session.queued_at = None
        label = EXIT_LABELS.get(reason, "")
        target = getattr(self.node, label, None) if label else None
        if target:
            self.leave(label, target)
        else:
            self.session.finish("unanswered", hangup=True)

    def on_queue_moved(self, queue: str, old_queue: str) -> None:
        """A supervisor moved the caller (docs/ACD.md, "Moving a caller"): for the record only.
        The caller hears nothing of it: the music or announcement playing goes on, and the next
        announcement says the new position (the queue answers with it)."""
        if self.cancelled or self.agent is not None or self.place is None:
            return
        self.session.emit(ev.QUEUE_MOVED, queue=queue, head=queue == old_queue,
                          queue_wait=self._wait(), **{"from": old_queue})  # fmt: skip

    def on_agent_leg(self, offer_id: int, state: str) -> None:
        if self.cancelled:
            return
        offer = self.agent if self.agent is not None and self.agent.id == offer_id \
            else self.offers.get(offer_id)  # fmt: skip
        if offer is None or self.place is None:
            return
        if state == ENDED:
            self._agent_gone(offer)
            return
        self.offers.pop(offer_id, None)
        self.place.result(offer_id, state)
        if state != ANSWERED:
            self.session.emit(ev.AGENT_RESULT, agent=offer.agent, outcome=state)
            return
        self.agent = offer
        self.connected_at = self.session.clock.now()
        self._stop_ringing()
        self.session.stop_prompts()
        self.session.emit(ev.AGENT_CONNECTED, agent=offer.agent, queue_wait=self._wait())
        self.session.queued_at = None

    def _agent_gone(self, offer: AgentOffer) -> None:
        assert self.place is not None
        self.place.agent_done(offer.agent)
        self.session.emit(ev.AGENT_DONE, agent=offer.agent, talk=self._talk())
        self.place = None
        if self.node.after:
            self.leave("after", self.node.after)
        else:
            self.session.finish("agent", hangup=True)

    # --- the caller -----------------------------------------------------------------------

    def on_dtmf(self, digit: str) -> bool:
        target = self.node.keys.get(digit)
        if target is None or self.agent is not None or self.place is None:
            return True  # keys while waiting are the queue's: none reach a later node
        if getattr(self.place, "handing_off", False):
            return True  # being handed to another system's queue: too late to leave
        place, self.place = self.place, None
        if target == CALLBACK and not self.session.channel.info.caller:
            self.place = place  # no number to call back: the caller keeps waiting
            return True
        self._stop_ringing()
        self.session.emit(ev.QUEUE_EXIT, reason="key", key=digit, queue_wait=self._wait())
        self.session.queued_at = None
        if target == CALLBACK and place.callback(self.session.channel.info.caller):
            self.session.emit(ev.CALLBACK, number=self.session.channel.info.caller)
            self.session.stop_prompts()
            self.session.play_rendered(RenderedPrompt(
                "queue_callback", self.session.language,
                WORDS.get(self.session.language, WORDS["en"])["callback"], barge_in=False))
            self.callback = True
        elif target == CALLBACK:  # no callback here: the caller keeps waiting
            self.place = place
            return True
        else:
            place.leave()
            self.leave(f"key {digit}", target)
        return True

    def repeat(self) -> None:
        pass  # a waiting caller's `*` is not "hear the node again"

    def hangup_outcome(self) -> str:
        if self.callback:  # hung up during "we will call you back": the callback stands
            return "callback_requested"
        if getattr(self.place, "handing_off", False):  # another system's queue takes the
            self.session.queued_at = None  # caller: not an abandonment (docs/ASTERISK.md)
            return HANDED_OFF
        if self.agent is not None:
            return "agent"
        return "abandoned_in_queue" if self.place is not None else "abandoned"

    def cancel(self) -> None:
        """The caller hung up (or a jump): nothing rings for them, no agent leg outlives them."""
        if not self.cancelled:
            self._stop_ringing()
            if self.agent is not None and self.place is not None:
                self.session.channel.stop_agent(self.agent.id)
                self.place.agent_done(self.agent.agent)
                self.session.emit(ev.AGENT_DONE, agent=self.agent.agent, talk=self._talk())
            elif self.place is not None:
                self.place.leave()
            self.place = None
        super().cancel()

    # --- helpers --------------------------------------------------------------------------

    def _stop_ringing(self) -> None:
        for offer_id in list(self.offers):
            self.session.channel.stop_agent(offer_id)
        self.offers.clear()

    def _wait(self) -> float:
        return round(self.session.clock.now() - self.joined_at, 3)

    def _talk(self) -> float:
        return round(self.session.clock.now() - self.connected_at, 3)
