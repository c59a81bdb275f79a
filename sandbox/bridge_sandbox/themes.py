"""Milestone titles and descriptions for the generated organisation, in the words a product team writes.

Each team has its own deliveries (`DELIVERIES`, used in order, one for each milestone that has tasks),
and every team has planned next deliveries that no key result moves yet (`PLANNED`): several teams
aim at the same outcomes (more visitors, more trials converting, a faster product, fewer customers
leaving), which is what `bridge okr draft` finds in the demo.
"""

from __future__ import annotations

DELIVERIES: dict[str, tuple[tuple[str, str], ...]] = {
    "payments": (
        (
            "One-click checkout for returning customers",
            "Remember the card and address of signed-in customers so a repeat purchase takes one click.",
        ),
        (
            "Retry failed card payments",
            "Retry declined renewals on a schedule and email the billing contact before the account lapses.",
        ),
        (
            "Refunds from the customer portal",
            "Customers ask for a refund themselves; support no longer keys refunds in by hand.",
        ),
        (
            "Apple Pay and Google Pay wallets",
            "Accept wallet payments on mobile checkout, where typing a card number loses buyers.",
        ),
        (
            "Invoices with VAT for business customers",
            "Compliant invoices with VAT numbers and reverse charge for companies in the EU.",
        ),
    ),
    "mobile": (
        (
            "Offline mode for the iOS app",
            "Read and edit the last synced items without a connection; changes sync when back online.",
        ),
        (
            "Crash fixes for Android 14",
            "Fix the three crashes that make up most crash reports since the Android 14 update.",
        ),
        ("Redesigned in-app onboarding", "Four short screens that get a new user to their first saved item."),
        (
            "Push notification preferences",
            "Let people choose which notifications they get instead of turning them all off.",
        ),
        (
            "Dark mode in both apps",
            "Follow the phone's appearance setting, with colours checked for contrast.",
        ),
    ),
    "design": (
        (
            "Design system tokens",
            "Colours, spacing and type as shared tokens used by the web and mobile code alike.",
        ),
        ("Accessible colour palette", "Every text and background pair meets WCAG AA contrast."),
        (
            "Checkout flow prototypes",
            "Clickable prototypes of the new checkout, tested with eight customers.",
        ),
        ("Icon set refresh", "One consistent icon set replacing the three styles in use today."),
        (
            "Usability study of search",
            "Watch twelve customers search for past orders and list what stops them.",
        ),
    ),
    "content": (
        (
            "Customer stories series",
            "Interviews with six customers about the problem the product solved for them.",
        ),
        (
            "Video tutorials for new users",
            "Ten short videos, one per everyday task, embedded in the help centre.",
        ),
        ("Localised help centre", "The fifty most read help articles in German, French and Spanish."),
        (
            "Product launch articles",
            "An article and a changelog entry for each feature released this quarter.",
        ),
        (
            "Style guide for product copy",
            "One voice for buttons, errors and emails, with examples of what to write and what not.",
        ),
    ),
    "growth": (
        (
            "Referral programme",
            "Customers invite colleagues and both get a month free when the invitee subscribes.",
        ),
        (
            "Onboarding email journey",
            "Five emails over the first two weeks, each teaching one step, stopped once the step is done.",
        ),
        ("Attribution dashboard", "Which campaign each sign-up came from, so the budget follows what works."),
        (
            "Partner marketplace listing",
            "List the product in two partner marketplaces with install links and reviews.",
        ),
        ("In-app upgrade prompts", "Prompt admins to upgrade when their team reaches a plan limit."),
    ),
    "data": (
        (
            "Warehouse migration to columnar storage",
            "Move the reporting tables to a columnar warehouse so month-end queries finish.",
        ),
        (
            "Self-serve revenue dashboard",
            "Finance reads monthly revenue, refunds and churn without asking the data team.",
        ),
        (
            "Event pipeline for the mobile apps",
            "App events reach the warehouse within five minutes, with a schema checked on the way in.",
        ),
        (
            "Data quality alerts",
            "Alert the owning team when a daily table arrives late, empty or with broken keys.",
        ),
        ("Customer health metrics", "Logins, seats used and support tickets per account, refreshed daily."),
    ),
}
"""Each team's deliveries with tasks, in order; a team with more milestones than these repeats them
with a part number."""

PLANNED: dict[str, tuple[tuple[str, str, float], ...]] = {
    "content": (
        (
            "Relaunch the blog on the main site",
            "Move the blog to the main domain and publish two articles a week so search brings more visitors "
            "to the site.",
            40.0,
        ),
        (
            "Social media calendar",
            "Daily posts on LinkedIn and Mastodon linking back to the blog, to grow the audience and the "
            "traffic it sends to the website.",
            20.0,
        ),
    ),
    "design": (
        (
            "Landing pages built for search traffic",
            "Landing pages per use case with structured data, so organic search sends more visitors to "
            "the website.",
            20.0,
        ),
        (
            "Pricing page that converts",
            "Redesign the pricing page and its call to action so more people comparing plans start a "
            "free trial.",
            40.0,
        ),
    ),
    "growth": (
        (
            "Shorter sign-up form",
            "Cut the sign-up form to three fields with Google sign-in so more people start a trial and "
            "convert.",
            60.0,
        ),
        (
            "Win-back emails for cancelled accounts",
            "Email customers who cancelled after 30 and 90 days with what changed, to bring churned "
            "accounts back.",
            13.0,
        ),
    ),
    "payments": (
        (
            "Free trial without a card",
            "Start the trial without card details and ask for them at conversion, so more sign-ups convert "
            "to paid.",
            40.0,
        ),
        (
            "Faster payment API",
            "Cache exchange rates and cut the payment API's p95 latency from 900 ms to under 300 ms so "
            "checkout stays fast.",
            20.0,
        ),
    ),
    "mobile": (
        (
            "Faster app start on older phones",
            "Load the home screen lazily so the app starts in under two seconds; slow start is the top "
            "complaint in reviews about performance.",
            20.0,
        ),
        (
            "Pause instead of cancel",
            "Offer to pause the subscription when someone cancels in the app, to cut churn among customers "
            "who only need a break.",
            13.0,
        ),
    ),
    "data": (
        (
            "Dashboard queries under a second",
            "Index and cache the slowest dashboard queries; large accounts wait eight seconds for the "
            "dashboard to load, a performance problem.",
            20.0,
        ),
        (
            "Churn risk score for account managers",
            "Score each account's risk of cancelling from its usage so account managers act before churn.",
            13.0,
        ),
    ),
}
"""Planned next deliveries per team: (title, description, value); no tasks and no key result yet."""


def delivery(team: str, index: int) -> tuple[str, str]:
    """The `index`th delivery (from 0) of `team`: its title and description."""
    pool = DELIVERIES[team]
    title, description = pool[index % len(pool)]
    part = index // len(pool)
    return (f"{title} (part {part + 1})" if part else title), description
