"""Targeting and contact consent: only customers who consented to a channel are targeted, on
the channel they consented to, and the audience is filled with them."""

from __future__ import annotations

from datetime import date

import pandas as pd

from planning.targeting import CONSENT_COLUMNS, consented_channel, target_customers

WEEK = date(2026, 11, 16)  # a Monday: consent is checked at 2026-11-16 00:00 UTC
LINES = pd.DataFrame({"product_id": [1, 2], "discount_depth": [0.2, 0.1]})


def _recommendations(customer_ids: list[int], products: tuple[int, ...] = (1, 2)) -> pd.DataFrame:
    """Every customer recommended for every product, ranked in the order given."""
    return pd.DataFrame([(p, c, 1.0 / (r + 1), r + 1) for p in products
                         for r, c in enumerate(customer_ids)],
                        columns=["product_id", "customer_id", "score", "rank"])


def _consents(*rows: tuple[int, str, str | None, str | None]) -> pd.DataFrame:
    """Consent periods (customer_id, channel, consented_from, withdrawn_at) as the mart has
    them."""
    frame = pd.DataFrame(rows, columns=CONSENT_COLUMNS)
    return frame.assign(consented_from=pd.to_datetime(frame["consented_from"]),
                        withdrawn_at=pd.to_datetime(frame["withdrawn_at"]))


def test_a_customer_without_consent_for_any_channel_is_never_targeted() -> None:
    customers = pd.DataFrame({"customer_id": [1, 2, 3, 4, 5],
                              "preferred_channel": [None, "", "email", "sms", None]})
    consents = _consents(
        (3, "email", "2026-01-01 09:00", "2026-06-01 10:00"),  # withdrawn before the week
        (3, "sms", "2026-12-01 09:00", None),  # given only after the week started
        (4, "sms", "2026-02-01 09:00", None),
        (5, "app_push", "2026-03-01 09:00", None),  # no preferred channel, a logged one
    )
    # the best-ranked customers (1-3) consented to nothing: no preferred channel (1, 2), every
    # period of the log outside the week (3)
    recs = _recommendations([1, 2, 3, 4, 5])
    for holdout_fraction in (0.0, 0.5, 1.0):
        targets = target_customers(LINES, recs, customers, WEEK, 5, holdout_fraction, seed=7,
                                   consents=consents)
        assert set(targets["customer_id"]) == {4, 5}  # neither treated nor held out
    assert targets.set_index("customer_id")["channel"].to_dict() == {4: "sms", 5: "app_push"}
    assert consented_channel(customers, consents, WEEK).to_dict() == {4: "sms", 5: "app_push"}


def test_a_withdrawn_consent_is_not_used_after_withdrawal() -> None:
    customers = pd.DataFrame({"customer_id": [1, 2, 3], "preferred_channel": "email"})
    consents = _consents(
        # 1: email withdrawn on the Sunday before the week; sms still held
        (1, "email", "2025-05-01 10:00", "2026-11-15 23:59"),
        (1, "sms", "2025-05-01 10:00", None),
        # 2: email withdrawn during the week: it still held when the week started
        (2, "email", "2025-05-01 10:00", "2026-11-18 12:00"),
        # 3: email withdrawn, then given again
        (3, "email", "2025-05-01 10:00", "2025-09-01 08:00"),
        (3, "email", "2026-01-10 08:00", None),
    )
    assert consented_channel(customers, consents, WEEK).to_dict() == {
        1: "sms", 2: "email", 3: "email"}
    # withdrawn at the very start of the week: no longer held then
    at_start = _consents((1, "email", "2025-05-01 10:00", "2026-11-16 00:00"))
    assert consented_channel(customers.iloc[:1], at_start, WEEK).empty
    # the week after 2's withdrawal it may no longer be contacted on email
    later = consented_channel(customers, consents, date(2026, 11, 23))
    assert later.to_dict() == {1: "sms", 3: "email"}


def test_the_preferred_channel_is_used_when_consented() -> None:
    customers = pd.DataFrame({"customer_id": [1, 2, 3, 4],
                              "preferred_channel": ["sms", "sms", "app_push", None]})
    consents = _consents(
        (1, "email", "2025-01-01 10:00", None),
        (1, "sms", "2025-01-01 10:00", None),  # preferred and consented: sms, not email
        (2, "email", "2025-01-01 10:00", None),
        (2, "app_push", "2025-01-01 10:00", None),
        (2, "sms", "2025-01-01 10:00", "2026-01-01 10:00"),  # preferred but withdrawn
        (3, "sms", "2025-01-01 10:00", None),  # the log says nothing of app_push: implied
        (4, "sms", "2025-01-01 10:00", None),
        (4, "app_push", "2025-01-01 10:00", None),
    )
    expected = {1: "sms", 2: "email", 3: "app_push", 4: "app_push"}
    assert consented_channel(customers, consents, WEEK).to_dict() == expected
    targets = target_customers(LINES, _recommendations([1, 2, 3, 4]), customers, WEEK, 4, 0.3,
                               seed=7, consents=consents)
    assert len(targets) == 8
    assert (targets["channel"] == targets["customer_id"].map(expected)).all()


def test_without_a_consent_log_the_preferred_channel_is_the_consent() -> None:
    customers = pd.DataFrame({"customer_id": [1, 2, 3],
                              "preferred_channel": ["app_push", None, "sms"]})
    for consents in (None, _consents()):
        targets = target_customers(LINES, _recommendations([1, 2, 3]), customers, WEEK, 3, 0.0,
                                   seed=7, consents=consents)
        assert targets.groupby("customer_id")["channel"].first().to_dict() == {
            1: "app_push", 3: "sms"}


def test_the_audience_stays_full_with_consenting_customers() -> None:
    ids = list(range(100, 400))
    # every third customer has no channel at all, the best-ranked ones among them
    customers = pd.DataFrame({"customer_id": ids,
                              "preferred_channel": ["" if c % 3 == 0 else "email" for c in ids]})
    targets = target_customers(LINES, _recommendations(ids), customers, WEEK, 50, 0.2, seed=7,
                               consents=_consents())
    assert targets.groupby("product_id").size().to_dict() == {1: 50, 2: 50}
    assert not (targets["customer_id"] % 3 == 0).any()
    # the best consenting customers, in rank order
    expected = [c for c in ids if c % 3][:50]
    for _, group in targets.groupby("product_id"):
        assert group["customer_id"].tolist() == expected
    treated = set(targets.loc[targets["assignment"] == "treatment", "customer_id"])
    held = set(targets.loc[targets["assignment"] == "holdout", "customer_id"])
    assert treated and held and not treated & held
    # the same inputs, the same targets
    again = target_customers(LINES, _recommendations(ids), customers, WEEK, 50, 0.2, seed=7,
                             consents=_consents())
    pd.testing.assert_frame_equal(targets, again)


def test_nobody_consented_means_no_targets() -> None:
    customers = pd.DataFrame({"customer_id": [1, 2], "preferred_channel": ""})
    targets = target_customers(LINES, _recommendations([1, 2]), customers, WEEK, 10, 0.2, seed=7,
                               consents=_consents())
    assert targets.empty
    assert list(targets.columns) == ["product_id", "customer_id", "score", "rank", "assignment",
                                     "channel", "uplift"]


def test_with_an_uplift_score_the_audience_is_the_candidates_it_rates_highest() -> None:
    """Among the same consenting candidates, the uplift score decides, the rank breaks ties,
    and a candidate without a score comes last."""
    customers = pd.DataFrame({"customer_id": range(1, 7), "preferred_channel": "email"})
    recs = pd.DataFrame({"product_id": 1, "customer_id": range(1, 7), "score": 1.0,
                         "rank": range(1, 7)})
    uplift = pd.Series({1: 0.01, 2: 0.05, 3: 0.05, 4: 0.09, 5: 0.02})
    lines = pd.DataFrame({"product_id": [1], "discount_depth": [0.2]})
    targets = target_customers(lines, recs, customers, WEEK, 3, 0.0, seed=7, uplift=uplift)
    assert targets["customer_id"].tolist() == [4, 2, 3]
    assert targets["uplift"].tolist() == [0.09, 0.05, 0.05]
    by_rank = target_customers(lines, recs, customers, WEEK, 3, 0.0, seed=7)
    assert by_rank["customer_id"].tolist() == [1, 2, 3] and by_rank["uplift"].isna().all()
    unscored = target_customers(lines, recs, customers, WEEK, 6, 0.0, seed=7, uplift=uplift)
    assert unscored["customer_id"].iloc[-1] == 6
