"""The kinds of measure a key result can take, and the words of a plan that name each one.

A group of milestones whose text speaks of the blog, social networks and search ranking aims at
visitors; one that speaks of checkout, sign-up and the trial at conversion. Each kind carries the title a
drafted key result gets (`{target}` stands for the number the owner still has to set, `{terms}` for what
the group shares), its unit, and the family it belongs to, which drafts the objective above it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from bridge.analytics.words import stem


@dataclass(frozen=True, slots=True)
class Measure:
    kind: str
    """Short name: `visitors`, `conversion`, `latency`, ..."""
    title: str
    unit: str
    family: str
    cues: frozenset[str]
    """Stems of the words that name this measure."""


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    objective: str


FAMILIES = {
    family.name: family
    for family in (
        Family("market", "Validate market interest"),
        Family("customers", "Make customers successful with the product"),
        Family("revenue", "Grow revenue"),
        Family("dependable", "Make the product fast and dependable"),
        Family("cost", "Run the service for less"),
        Family("trust", "Earn customers' trust in security and compliance"),
    )
}


def _measure(kind: str, title: str, unit: str, family: str, cues: str) -> Measure:
    return Measure(kind, title, unit, family, frozenset(stem(word) for word in cues.split()))


MEASURES: tuple[Measure, ...] = (
    _measure(
        "visitors", "Reach {target} unique visitors a month through {terms}", "visitors", "market",
        "visitor visitors visit visits traffic seo pageview pageviews audience reach blog blogs social "
        "organic impressions website ranking backlinks content articles newsletter",
    ),
    _measure(
        "leads", "Engage {target} % of leads through {terms}", "%", "market",
        "lead leads nurture nurturing webinar webinars prospect prospects outreach mql crm engaged "
        "engagement drip demo demos",
    ),
    _measure(
        "conversion", "Convert {target} % of visitors to a trial or purchase through {terms}", "%", "market",
        "conversion conversions convert converting funnel checkout trial trials signup sign registration "
        "register landing cart basket purchase purchases abandonment buy buyers shoppers",
    ),
    _measure(
        "activation", "Bring {target} % of new accounts to their first success through {terms}", "%",
        "customers",
        "onboarding onboard activation activate wizard tutorial walkthrough checklist welcome "
        "first-run aha invite invites templates sample",
    ),
    _measure(
        "adoption", "Get {target} % of active accounts using {terms}", "%", "customers",
        "adoption adopt usage use active daily weekly discoverability discover",
    ),
    _measure(
        "retention", "Keep monthly churn under {target} % through {terms}", "%", "customers",
        "retention retain churn churned cancel cancellation cancellations renewal renewals renew "
        "winback win-back loyalty health at-risk dormant reactivation",
    ),
    _measure(
        "satisfaction", "Raise customer satisfaction (CSAT) to {target} through {terms}", "points",
        "customers",
        "nps csat satisfaction satisfied support ticket tickets feedback survey complaints help "
        "helpdesk chat",
    ),
    _measure(
        "revenue", "Grow monthly recurring revenue to {target} through {terms}", "€ a month", "revenue",
        "revenue mrr arr billing invoice invoices invoicing payment payments pricing price prices upsell "
        "upgrade upgrades monetise monetize sales deal deals annual discount tax refund subscription "
        "subscriptions paid plans tier tiers",
    ),
    _measure(
        "latency", "Bring p95 response time under {target} ms through {terms}", "ms", "dependable",
        "latency performance fast faster speed slow slowness load loading render rendering cache "
        "caching p95 p99 milliseconds ms seconds query queries index indexes bundle lazy cdn throughput "
        "compress prefetch vitals",
    ),
    _measure(
        "reliability", "Keep monthly uptime at {target} % through {terms}", "%", "dependable",
        "uptime outage outages incident incidents availability reliability reliable failover "
        "redundancy crash crashes monitoring alerting alerts on-call backup backups disaster recovery "
        "resilience sla slo errors retries",
    ),
    _measure(
        "delivery", "Deliver {target} % of orders on time through {terms}", "%", "dependable",
        "delivery deliveries delivered shipping shipment shipments carrier carriers parcel parcels "
        "fulfilment fulfillment warehouse dispatch late on-time logistics courier",
    ),
    _measure(
        "quality", "Cut open defects by {target} % through {terms}", "%", "dependable",
        "bug bugs defect defects regression regressions test tests testing coverage flaky qa quality",
    ),
    _measure(
        "cost", "Cut running costs by {target} % through {terms}", "%", "cost",
        "cost costs spend spending expense expenses budget savings cheaper efficiency rightsizing "
        "reserved instances bill",
    ),
    _measure(
        "security", "Close {target} % of security and compliance findings through {terms}", "%", "trust",
        "security secure compliance compliant audit audits gdpr soc iso vulnerability vulnerabilities "
        "encryption encrypt sso saml permissions penetration pentest privacy consent mfa fraud attack "
        "attacks takeover credential credentials authentication pci breach",
    ),
)  # fmt: skip
"""General kinds of product and service measure, not any one product's: a plan names them in its own
words, and the cues are the words any plan uses for them."""

BY_KIND = {m.kind: m for m in MEASURES}
UNMEASURED_TITLE = "Reach {target} on the outcome of {terms}"


def cue_counts(stems: Iterable[str]) -> Counter[str]:
    """How many of `stems` cue each measure kind."""
    counts: Counter[str] = Counter()
    for word in stems:
        for measure in MEASURES:
            if word in measure.cues:
                counts[measure.kind] += 1
    return counts


def cue_words(stems: Iterable[str], kind: str) -> list[str]:
    """The stems of `stems` that cue `kind`, each once, in their order."""
    cues = BY_KIND[kind].cues
    return list(dict.fromkeys(word for word in stems if word in cues))
