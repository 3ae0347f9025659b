"""A campaign in its voting week with 22 shortlisted candidates, each with a real photo file and
long deeds (the figures of the issue: 22 full deeds), for the phone's browser test and
bench/lighthouse_bench.py. Written into the server's database and uploads folder before it starts."""

from __future__ import annotations

import hashlib
import io
from datetime import datetime
from pathlib import Path

from PIL import Image, ImageDraw

from campaigns import service as campaigns
from config.settings import Settings
from core.beijing import BEIJING
from core.clock import ManualClock, use_clock
from nominations.models import Attachment, AttachmentKind
from nominations.states import State
from storage.db import make_engine, unit_of_work
from tests.factories import create_nomination

VOTING = "2021-07-02T09:00:00+08:00"  # voting open, deeds published
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁"
DEEDS = "扎根生产一线三十年，攻克多项关键工艺难题，主持完成数控加工工艺改进，带出徒弟四十余人。" * 6


def portrait(i: int) -> bytes:
    """A 600 × 800 JPEG of a plain figure (a real photo's size; the server makes the thumbnails)."""
    image = Image.new("RGB", (600, 800), (200 - i * 5, 215, 230 - i * 3))
    draw = ImageDraw.Draw(image)
    draw.ellipse((200, 140, 400, 360), fill=(240, 210, 180))
    draw.rectangle((130, 420, 470, 800), fill=(40 + i * 8, 60, 110))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=88)
    return out.getvalue()


def seed_voting(database_url: str, data_dir: Path, count: int = 22) -> list[int]:
    """``count`` shortlisted candidates with photos; their nomination ids, in 编号 order."""
    uploads = Settings.model_validate({"JINGONG_DATA_DIR": str(data_dir)}).uploads_dir
    engine = make_engine(database_url)
    try:
        with use_clock(ManualClock(datetime(2021, 5, 20, 10, 0, tzinfo=BEIJING))), unit_of_work(engine) as session:
            campaign = campaigns.get_campaign(session)
            spec = campaigns.spec_of(campaign)
            ids = []
            for i in range(count):
                name = SURNAMES[i % len(SURNAMES)] + ("师傅" if i % 2 else "工匠")
                n = create_nomination(session, campaign, spec, State.SHORTLISTED, name=name,
                                      employer=f"重庆江津第{i + 1}机械有限公司", deeds=DEEDS[:500])
                data = portrait(i)
                key = f"n{n.id}/photo-{i}.jpg"
                (uploads / key).parent.mkdir(parents=True, exist_ok=True)
                (uploads / key).write_bytes(data)
                attachment = Attachment(nomination_id=n.id or 0, kind=AttachmentKind.PHOTO, filename="photo.jpg",
                                        content_type="image/jpeg", size=len(data),
                                        sha256=hashlib.sha256(data).hexdigest(), storage_key=key,
                                        uploaded_at=datetime(2021, 5, 20, 2, 0, tzinfo=BEIJING))
                session.add(attachment)
                session.flush()
                n.photo_attachment_id = attachment.id
                session.add(n)
                session.flush()
                ids.append(n.id or 0)
        return ids
    finally:
        engine.dispose()


def voter_cookie(database_url: str, data_dir: Path, n: int = 1) -> str:
    """A verified voter's token (what ``/vote/verify`` sets as the ``jingong_voter`` cookie)."""
    from voting.identities import issue_token
    from voting.models import IdentityKind, VoterIdentity

    settings = Settings.model_validate({"JINGONG_DATA_DIR": str(data_dir)})  # the server's secret key
    engine = make_engine(database_url)
    try:
        with use_clock(ManualClock(datetime(2021, 7, 2, 9, 0, tzinfo=BEIJING))) as clock, \
                unit_of_work(engine) as session:
            campaign = campaigns.get_campaign(session)
            voter = VoterIdentity(campaign_id=campaign.id or 0, kind=IdentityKind.EMAIL,
                                  identity_hash=f"phone-voter-{n}", created_at=clock.now(), created_minute=n)
            session.add(voter)
            session.flush()
            return issue_token(campaign.id or 0, voter.id or 0, settings)
    finally:
        engine.dispose()
