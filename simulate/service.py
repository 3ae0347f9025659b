"""A whole campaign on a virtual clock, in one process, on a scratch SQLite file.

Generated nominations (some late, some prior winners, some incomplete) go through the real
services: the transition service, the scheduler's ``tick()``, the mail outbox. Same seed, same
result.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from campaigns import service as campaigns
from campaigns.models import Campaign
from config.campaign import CampaignSpec, StageName, Track, load_campaign
from config.secrets import keyed_hash
from core.actor import Actor
from core.clock import ManualClock, use_clock
from core.errors import DeadlinePassed, GuardFailed
from nominations import attachments
from nominations import service as nominations
from nominations.models import AttachmentKind, Nomination, NominationKind, PriorAward, PriorAwardKind
from nominations.states import State
from notifications.models import OutboxMail
from stages import jobs
from stages import service as stages
from storage.db import make_engine, unit_of_work
from storage.migrate import create_all
from wiring.bootstrap import bootstrap
from wiring.tables import metadata
from workflow import service as workflow
from workflow import shortfall
from workflow.machine import Event

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程魏苏吕丁任沈姚卢钟谭"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华文玉兰红建国志林海波宇浩然德华春梅斌军良成永"
GRADES = ["高级技师", "技师", "高级工", "中级工", "初级工", "高级职称", "中级职称", "初级职称"]
EMPLOYERS = ["重庆江津某机械有限公司", "江津区某建筑公司", "双福某汽配厂", "德感某粮油公司", "珞璜某电厂",
             "白沙某酒厂", "江津区人民医院", "某职业技术学校", "某花椒合作社", "某非遗工作室"]
OFFICE = Actor.system("simulated-office")


#: simulated voters (each votes for 1-6 candidates on each of two days)
VOTERS = 300


@dataclass
class Report:
    nominations: int
    seed: int
    counts: dict[str, int]
    mails: int
    late_refused: int
    prior_refused: int
    incomplete_refused: int
    seconds: float
    votes: int = 0
    second_votes_refused: int = 0
    lines: list[str] = field(default_factory=list)
    #: steps still blocked at the end (the campaign did not run to its end), in calendar order
    blocked: list[str] = field(default_factory=list)

    @property
    def reached_commendation(self) -> bool:
        return not self.blocked and self.counts.get(State.COMMENDED.value, 0) > 0


@dataclass
class Person:
    """One generated applicant; the form itself is built from ``seed`` when it is submitted, so a
    large simulation does not hold every form in memory at once."""

    index: int
    seed: int
    name: str
    birth: date
    submit_at: datetime
    late: bool
    incomplete: bool
    prior: str | None

    def form(self, spec: CampaignSpec, unit_ids: list[int]) -> dict[str, Any]:
        rng = random.Random(self.seed)
        kind = NominationKind.UNIT if rng.random() < 0.6 else NominationKind.SELF
        form: dict[str, Any] = {
            "kind": kind, "name": self.name, "sex": rng.choice(("男", "女")), "ethnicity": "汉族",
            "birth_date": self.birth, "education": rng.choice(("高中", "中等专业学校", "大学专科", "大学本科")),
            "political_status": rng.choice(("中共党员", "群众")),
            "employer": rng.choice(EMPLOYERS), "position": rng.choice(("技术员", "班组长", "车间主任", "工程师")),
            "technical_grade": rng.choice(GRADES), "years_of_service": 5 + rng.randrange(35),
            "phone": f"13{rng.randrange(10**9):09d}", "applicant_email": f"n{self.index}@example.cn",
            "honours": "区级技术能手", "achievements": "工艺改进与带徒传艺",
            "deeds": None if self.incomplete else "扎根一线，精益求精。" * rng.randint(1, 20),
            "priority_conditions": sorted(rng.sample([c.code for c in spec.priority_conditions], rng.randrange(4))),
        }
        if kind is NominationKind.UNIT:
            form |= {"unit_id": rng.choice(unit_ids), "unit_opinion": "同意推荐", "unit_opinion_date": date(2021, 5, 1)}
        else:
            form |= {"applicant_signature": self.name, "applicant_signed_date": date(2021, 5, 1)}
        return form


def _people(rng: random.Random, n: int, opens: datetime, closes: datetime) -> list[Person]:
    window = (closes - opens).total_seconds()
    people = []
    for i in range(n):
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        birth = date(1960 + rng.randrange(40), 1 + rng.randrange(12), 1 + rng.randrange(28))
        roll = rng.random()
        late, incomplete = roll >= 0.97, roll < 0.03
        submit_at = opens + timedelta(seconds=rng.random() * window)
        if late:
            submit_at = closes + timedelta(seconds=rng.random() * 2 * 86400)
        prior = "winner" if 0.03 <= roll < 0.04 else "finalist" if 0.04 <= roll < 0.05 else None
        people.append(Person(i, rng.randrange(2**32), name, birth, submit_at, late, incomplete, prior))
    people.sort(key=lambda p: p.submit_at)
    return people


class Simulation:
    def __init__(self, engine: Engine, spec: CampaignSpec, rng: random.Random, say: Callable[[str], None]):
        self.engine, self.spec, self.rng, self.say = engine, spec, rng, say
        self.clock = ManualClock(spec.stage(StageName.PUBLICITY).opens - timedelta(seconds=1))
        self.refused: Counter[str] = Counter()
        self.votes: dict[int, int] = {}
        self.voters = VOTERS
        self.unit_ids: list[int] = []

    def advance_to(self, instant: datetime) -> None:
        """Move the clock to ``instant``, running every step due on the way, at its own instant."""
        while True:
            with unit_of_work(self.engine, readonly=True) as session:
                campaign = campaigns.get_campaign(session, self.spec.slug)
                steps = stages.pending_steps(session, campaign.id or 0, 1)
            if not steps or steps[0].due_at > instant:
                break
            due = max(steps[0].retry_at or steps[0].due_at, self.clock.now())
            if due > instant:
                break
            self.clock.set(due)
            results = jobs.tick(self.engine)
            for r in results:
                self.say(f"[{self.spec.to_local(r.ran_at):%Y-%m-%d %H:%M}] {r.key}: {r.summary}")
            if results and not results[-1].done:
                break
        if instant > self.clock.now():
            self.clock.set(instant)

    @property
    def campaign_id(self) -> int:
        with unit_of_work(self.engine, readonly=True) as session:
            return campaigns.get_campaign(session, self.spec.slug).id or 0

    def nominate(self, people: list[Person], progress: Callable[[int], None]) -> None:
        cid = self.campaign_id
        with unit_of_work(self.engine) as session:
            campaign = session.get(Campaign, cid)
            assert campaign is not None
            for p in people:
                if p.prior:
                    award = PriorAwardKind.WINNER if p.prior == "winner" else PriorAwardKind.FINALIST
                    session.add(PriorAward(edition=1 + self.rng.randrange(2), award=award, name=p.name,
                                           birth_date=p.birth))
        with unit_of_work(self.engine, readonly=True) as session:
            dues = sorted(s.due_at for s in stages.pending_steps(session, cid))
        chunk: list[Person] = []
        for person in people:
            # a chunk never spans a step's instant: the step runs at its own time, in order
            crosses = chunk and any(chunk[0].submit_at < d <= person.submit_at for d in dues)
            if len(chunk) == 500 or crosses:
                self._submit_chunk(cid, chunk)
                progress(len(chunk))
                chunk = []
            chunk.append(person)
        if chunk:
            self._submit_chunk(cid, chunk)
            progress(len(chunk))

    def _submit_chunk(self, cid: int, chunk: list[Person]) -> None:
        self.advance_to(chunk[0].submit_at)
        with unit_of_work(self.engine) as session:
            campaign = session.get(Campaign, cid)
            assert campaign is not None
            for person in chunk:
                if person.submit_at > self.clock.now():
                    self.clock.set(person.submit_at)
                draft = nominations.create_draft(session, campaign, self.spec,
                                                 person.form(self.spec, self.unit_ids))
                _photo_uploaded(session, draft)
                try:
                    with session.begin_nested():
                        workflow.transition(session, draft.id or 0, Event.SUBMIT, actor=Actor.applicant())
                except DeadlinePassed:
                    self.refused["late"] += 1
                except GuardFailed as exc:
                    self.refused["prior" if "may not be nominated" in str(exc) else "incomplete"] += 1

    def screen(self) -> None:
        cid = self.campaign_id
        with unit_of_work(self.engine) as session:
            submitted = sorted(i for i in session.exec(select(Nomination.id).where(
                Nomination.campaign_id == cid, Nomination.state == State.SUBMITTED)) if i is not None)
            rejected = [i for i in submitted if self.rng.random() < 0.1]
            accepted = sorted(set(submitted) - set(rejected))
            # the committee's bulk acts: one request each on the dashboard
            workflow.transition_many(session, rejected, Event.REJECT, actor=OFFICE, reason="材料不符合评选条件")
            for start in range(0, len(accepted), 500):
                workflow.transition_many(session, accepted[start:start + 500], Event.PASS_SCREENING, actor=OFFICE)
            screened = session.exec(select(Nomination.id, Nomination.priority_conditions).where(
                Nomination.campaign_id == cid, Nomination.state == State.SCREENED).order_by(col(Nomination.id))).all()
            ranked = sorted(screened, key=lambda row: (-len(row[1] or []), self.rng.random()))
            size = min(len(ranked), self.rng.randint(self.spec.shortlist.min, self.spec.shortlist.max))
            for nomination_id, _ in ranked[:size]:
                workflow.transition(session, nomination_id or 0, Event.SHORTLIST, actor=OFFICE)
        self.say(f"[{self.spec.to_local(self.clock.now()):%Y-%m-%d %H:%M}] screening: {len(submitted)} screened, "
                 f"shortlist of {size}")

    def vote(self) -> None:
        """Real votes through ``voting.casting.cast_vote``: verified voters (stored hashed) vote over two
        days for some of the candidates; a few try twice the same day and are refused."""
        from config.settings import Settings
        from core.errors import Conflict
        from voting import casting, tally
        from voting.models import IdentityKind, VoterIdentity

        settings = Settings.model_validate({"SECRET_KEY": f"simulation-{self.rng.random()}-" + "s" * 32,
                                            "VOTE_RATE_PER_ADDRESS_MINUTE": 0, "VOTE_RATE_PER_VOTER_MINUTE": 0})
        cid = self.campaign_id
        with unit_of_work(self.engine) as session:
            shortlisted = [n.id or 0 for n in
                           nominations.list_nominations(session, cid, states=[State.SHORTLISTED])]
            now = self.clock.now()
            voters = [VoterIdentity(campaign_id=cid, kind=IdentityKind.PHONE,
                                    identity_hash=keyed_hash(f"phone:139{i:08d}", settings), created_at=now,
                                    created_minute=int(now.timestamp() // 60) + i // 50, verified_at=now)
                      for i in range(self.voters)]
            session.add_all(voters)
            session.flush()
            voter_ids = [v.id or 0 for v in voters]
        # favourites draw more votes
        weights = [self.rng.random() ** 2 + 0.05 for _ in shortlisted]
        cast = 0
        for _day in range(2):
            for voter in voter_ids:
                picks = set(self.rng.choices(shortlisted, weights, k=self.rng.randint(1, 6)))
                address = f"10.{self.rng.randint(0, 40)}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"
                for nomination_id in sorted(picks):
                    casting.cast_vote(self.engine, cid, nomination_id, voter, address, settings)
                    cast += 1
                if self.rng.random() < 0.05:
                    try:
                        casting.cast_vote(self.engine, cid, min(picks), voter, address, settings)
                    except Conflict:
                        self.refused["vote_twice"] += 1
            self.advance_to(self.clock.now() + timedelta(days=1))
        with unit_of_work(self.engine, readonly=True) as session:
            self.votes = tally.tally(session, cid)
            assert tally.verify(session, cid) == []
        self.say(f"[{self.spec.to_local(self.clock.now()):%Y-%m-%d %H:%M}] voting: {cast} votes by {len(voter_ids)} "
                 f"voters for {len(shortlisted)} candidates; {self.refused['vote_twice']} second votes refused")

    def review(self) -> None:
        cid = self.campaign_id
        with unit_of_work(self.engine) as session:
            voted = nominations.list_nominations(session, cid, states=[State.VOTED])
            from voting import tally

            self.votes = tally.tally(session, cid)  # frozen at the voting close
            ranked = sorted(voted, key=lambda n: (-self.votes.get(n.id or 0, 0), n.id))
            main, finalist = self.spec.awards.main, self.spec.awards.finalist
            for n in ranked:
                prior_finalist = any(p.award == PriorAwardKind.FINALIST
                                     for p in nominations.prior_awards_of(session, n, self.spec))
                if main:
                    track, main = Track.MAIN, main - 1
                elif finalist and not prior_finalist:
                    track, finalist = Track.FINALIST, finalist - 1
                else:
                    continue
                workflow.transition(session, n.id or 0, Event.VET, actor=OFFICE, data={"track": track.value},
                                    reason=f"网络投票{self.votes.get(n.id or 0, 0)}票，综合评审通过")
            short = shortfall.shortage(session, cid)
            if short is not None:  # as a real committee would: decide, with a reason, audited
                shortfall.decide(session, cid, actor=OFFICE,
                                 reason=f"合格人选不足（{short}），组委会决定按现有人数确定正式候选人")
        self.say(f"[{self.spec.to_local(self.clock.now()):%Y-%m-%d %H:%M}] review: formal candidates named"
                 + (f"; shortfall decided ({short})" if short else ""))

    def objection(self, uphold: bool) -> None:
        cid = self.campaign_id
        with unit_of_work(self.engine) as session:
            vetted = nominations.list_nominations(session, cid, states=[State.VETTED])
            if not vetted:
                self.say(f"[{self.spec.to_local(self.clock.now()):%Y-%m-%d %H:%M}] no formal candidates to object to")
                return
            target = self.rng.choice(vetted)
            workflow.transition(session, target.id or 0, Event.OBJECT, actor=Actor.applicant("public"),
                                reason="群众反映其主要事迹材料存在夸大")
        self.say(f"[{self.spec.to_local(self.clock.now()):%Y-%m-%d %H:%M}] objection lodged against #{target.id}")
        self.advance_to(self.clock.now() + timedelta(days=5))
        event = Event.UPHOLD_OBJECTION if uphold else Event.DISMISS_OBJECTION
        with unit_of_work(self.engine) as session:
            workflow.transition(session, target.id or 0, event, actor=OFFICE,
                                reason="经核查情况属实" if uphold else "经核查反映不实")
        self.say(f"[{self.spec.to_local(self.clock.now()):%Y-%m-%d %H:%M}] objection "
                 f"{'upheld' if uphold else 'dismissed'}")


@contextmanager
def _scratch_engine(database: Path | None) -> Iterator[Engine]:
    if database is not None:
        engine = make_engine(f"sqlite:///{database}")
        create_all(engine, metadata)
        yield engine
        engine.dispose()
        return
    with tempfile.TemporaryDirectory(prefix="jingong-sim-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'simulation.db'}")
        create_all(engine, metadata)
        yield engine
        engine.dispose()


def _photo_uploaded(session: Session, draft: Nomination) -> None:
    """The applicant's photo, as an upload records it (the row only: the scratch database of a
    simulation has no uploads folder, and no page shows the photos)."""
    attachments.record(session, draft, AttachmentKind.PHOTO, filename="照片.jpg", content_type="image/jpeg", size=0,
                       sha256="0" * 64, storage_key=f"n{draft.id}/simulated.jpg")


def simulate(
    count: int, seed: int, *, say: Callable[[str], None] = print, progress: Callable[[int], None] | None = None,
    database: Path | None = None, campaign_file: Path | None = None,
) -> Report:
    started = time.perf_counter()
    spec = load_campaign(campaign_file) if campaign_file else load_campaign()
    rng = random.Random(seed)
    bootstrap()
    with _scratch_engine(database) as engine:
        sim = Simulation(engine, spec, rng, say)
        with use_clock(sim.clock):
            with unit_of_work(engine) as session:
                campaign = stages.load_campaign(session, spec)
                unit_ids = [u.id or 0 for u in campaigns.list_units(session, campaign.id or 0)]
            nomination = spec.stage(StageName.NOMINATION)
            people = _people(rng, count, nomination.opens, nomination.closes)
            sim.unit_ids = unit_ids
            sim.nominate(people, progress or (lambda _: None))
            screening = spec.stage(StageName.SCREENING)
            sim.advance_to(screening.opens + timedelta(days=10))
            sim.screen()
            sim.advance_to(spec.stage(StageName.VOTING).opens + timedelta(days=1))
            sim.vote()
            sim.advance_to(spec.stage(StageName.REVIEW).opens + timedelta(days=3))
            sim.review()
            sim.advance_to(spec.stage(StageName.NOTICE).opens + timedelta(days=3))
            sim.objection(uphold=rng.random() < 0.5)
            sim.advance_to(max(s.closes for s in spec.stages) + timedelta(seconds=1))
            with unit_of_work(engine, readonly=True) as session:
                cid = campaigns.get_campaign(session, spec.slug).id or 0
                counts = {s.value: n for s, n in sorted(nominations.count_by_state(session, cid).items())}
                mails = session.exec(select(func.count()).select_from(OutboxMail)).one()
                total = session.exec(select(func.count()).select_from(Nomination)
                                     .where(col(Nomination.campaign_id) == cid)).one()
                blocked = [f"{s.key}: {s.last_error}" for s in stages.pending_steps(session, cid) if s.last_error]
    assert total == count
    return Report(count, seed, counts, mails, sim.refused["late"], sim.refused["prior"], sim.refused["incomplete"],
                  time.perf_counter() - started, votes=sum(sim.votes.values()),
                  second_votes_refused=sim.refused["vote_twice"], blocked=blocked)
