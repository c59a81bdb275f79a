"""A labelled set of planned milestones, written for the drafting tests: seven outcomes a SaaS company
pursues, each planned by more than one of three teams, in the words product people use.

Each entry is (theme, team, title, description, labels). The theme is what the test expects the drafts
to recover; it is never given to the drafting.
"""

from __future__ import annotations

LABELLED: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    # --- visitors: bring more people to the site ---------------------------------------------------------
    ("traffic", "Growth", "Relaunch the company blog",
     "Move the blog to the main domain, publish two long-form articles a week and link them from the "
     "home page so search engines send us more visitors.", ("marketing",)),
    ("traffic", "Growth", "Social media content calendar",
     "Plan daily posts on LinkedIn, X and Mastodon with links back to the website to grow the audience "
     "and the traffic it sends.", ("marketing",)),
    ("traffic", "Product", "SEO fixes on the marketing website",
     "Fix broken canonical tags, add structured data and a sitemap so organic search traffic to the "
     "website grows.", ("website",)),
    ("traffic", "Growth", "Guest posts and backlinks programme",
     "Pitch guest articles to ten industry blogs each month; every article links to our site and brings "
     "new visitors.", ()),
    ("traffic", "Product", "Public template gallery indexed by search engines",
     "Publish the template gallery as public pages with their own URLs so search brings visitors who "
     "look for ready-made templates.", ("website",)),
    ("traffic", "Growth", "YouTube channel with weekly tutorials",
     "Record a weekly video, share it on social networks and embed it on the blog to reach a wider "
     "audience.", ("marketing",)),
    ("traffic", "Growth", "Newsletter relaunch with shareable issues",
     "Each newsletter issue gets a public web page that readers share on social media, bringing traffic "
     "back to the site.", ()),
    ("traffic", "Product", "Localised website in German and French",
     "Translate the marketing website and the blog so visitors from Germany and France find us through "
     "search in their language.", ("website",)),
    ("traffic", "Growth", "Podcast sponsorships",
     "Sponsor three podcasts our audience listens to, each with a tracked link to a landing page on the "
     "website to measure the visitors they bring.", ("marketing",)),
    # --- conversion: turn visitors into trials and customers ----------------------------------------------
    ("conversion", "Growth", "Shorter sign-up form",
     "Cut the sign-up form from nine fields to three and allow Google sign-in so more visitors start a "
     "trial.", ("funnel",)),
    ("conversion", "Product", "Free trial without a credit card",
     "Let people start the 14-day trial without entering a card; measure how many more sign up and how "
     "many convert to paid at the end.", ("funnel",)),
    ("conversion", "Growth", "A/B test the pricing page call to action",
     "Test three versions of the pricing page button and headline to raise the share of visitors who "
     "start a trial.", ("experiment",)),
    ("conversion", "Product", "Checkout in one step",
     "Merge the plan choice, card details and confirmation into one checkout page to cut checkout "
     "abandonment.", ("funnel",)),
    ("conversion", "Growth", "Exit-intent offer on the landing pages",
     "Show a trial extension offer when a visitor is about to leave a landing page without signing up.",
     ("experiment",)),
    ("conversion", "Product", "Trial expiry reminder emails",
     "Send reminders three days and one day before the trial ends, with a direct link to upgrade, so more "
     "trials convert.", ()),
    ("conversion", "Growth", "Customer logos and testimonials on the sign-up page",
     "Social proof next to the sign-up form to make hesitant visitors trust us enough to register.",
     ("funnel",)),
    ("conversion", "Product", "Abandoned cart recovery",
     "Email people who left the checkout halfway with their chosen plan saved, to win back lost "
     "purchases.", ()),
    ("conversion", "Growth", "Live chat on the pricing page",
     "A sales chat on the pricing page answers questions that stop visitors from starting a trial or "
     "buying.", ("experiment",)),
    # --- latency: make the product fast ------------------------------------------------------------------
    ("latency", "Platform", "Cache the dashboard queries",
     "Put a Redis cache in front of the five slowest dashboard queries; the dashboard takes eight seconds "
     "to load for large accounts.", ("performance",)),
    ("latency", "Platform", "Database indexes for the search endpoint",
     "Add composite indexes for the search endpoint, whose p95 latency is 2.3 s, and rewrite the query "
     "that scans the whole table.", ("performance",)),
    ("latency", "Product", "Lazy-load the project board",
     "Render only the visible columns of the board and load the rest on scroll; boards with 2,000 cards "
     "freeze the browser.", ("frontend",)),
    ("latency", "Platform", "Move static assets to a CDN",
     "Serve scripts, styles and images from a CDN with long cache headers to cut page load time abroad.",
     ("performance",)),
    ("latency", "Product", "Split the JavaScript bundle",
     "The 4 MB bundle blocks the first render; split it by route so the first page loads in under two "
     "seconds.", ("frontend",)),
    ("latency", "Platform", "Connection pooling for the API",
     "Reuse database connections through PgBouncer; opening a connection per request adds 40 ms to every "
     "API call.", ("performance",)),
    ("latency", "Platform", "Background jobs for report exports",
     "Exports run inside the web request and time out; move them to a queue so pages stay fast while a "
     "report is built.", ()),
    ("latency", "Product", "Faster search as you type",
     "Debounce keystrokes and query a prefix index so search results appear within 100 ms.", ("frontend",)),
    ("latency", "Platform", "Profile and speed up the slowest API endpoints",
     "Trace the ten slowest endpoints in production and fix their N+1 queries and serialisation "
     "overhead.", ("performance",)),
    # --- reliability: keep the service up ---------------------------------------------------------------
    ("reliability", "Platform", "Multi-zone database failover",
     "Run a standby replica in a second availability zone with automatic failover, so a zone outage no "
     "longer takes us down.", ("infrastructure",)),
    ("reliability", "Platform", "On-call rotation and incident runbooks",
     "Set up a paging rota, write runbooks for the ten most common incidents and hold blameless "
     "post-mortems.", ("operations",)),
    ("reliability", "Platform", "Synthetic monitoring and alerting",
     "Probe login, checkout and the API every minute from three regions and alert on-call when a probe "
     "fails, before customers notice an outage.", ("operations",)),
    ("reliability", "Platform", "Nightly backup restore drills",
     "Restore last night's backup into a scratch environment every night and alert when the restore "
     "fails, so disaster recovery is proven.", ("infrastructure",)),
    ("reliability", "Product", "Graceful degradation when the search cluster is down",
     "Keep the app usable without search during an incident: show recent items and a status banner "
     "instead of an error page.", ()),
    ("reliability", "Platform", "Zero-downtime deployments",
     "Blue-green deploys with health checks, so releasing no longer causes five minutes of errors and "
     "dropped requests.", ("infrastructure",)),
    ("reliability", "Product", "Public status page",
     "Publish uptime and incidents on a status page fed by our monitoring, so customers see availability "
     "at a glance during an outage.", ("operations",)),
    ("reliability", "Platform", "Rate limiting to protect the API from overload",
     "Per-customer rate limits and circuit breakers keep one heavy integration from causing an outage "
     "for everyone.", ()),
    ("reliability", "Platform", "Error budget and SLO dashboards",
     "Define service level objectives for availability of the API and the web app, with an error budget "
     "that pauses feature releases when it is spent.", ("operations",)),
    # --- retention: keep customers -----------------------------------------------------------------------
    ("retention", "Product", "Cancellation flow with a pause option",
     "When a customer cancels, offer to pause the subscription for up to three months and ask why they "
     "leave, to cut churn.", ("churn",)),
    ("retention", "Growth", "Win-back campaign for churned accounts",
     "Email churned customers after 30 and 90 days with what changed since they left and a discount to "
     "come back.", ("churn",)),
    ("retention", "Product", "Account health score",
     "Score every account on logins, seats used and support tickets, and flag at-risk accounts to "
     "customer success before they churn.", ("churn",)),
    ("retention", "Growth", "Renewal reminders for annual plans",
     "Remind annual customers 60 and 30 days before renewal with a summary of their usage, so fewer "
     "renewals lapse.", ()),
    ("retention", "Product", "Quarterly business reviews for key accounts",
     "Customer success runs a review with each of the top fifty accounts every quarter to keep them "
     "from churning at renewal.", ("churn",)),
    ("retention", "Growth", "Re-engage dormant users",
     "Users who have not logged in for three weeks get a personal email with what their team did "
     "meanwhile, before the account goes dormant and cancels.", ()),
    ("retention", "Product", "Exit survey on cancellation",
     "Ask cancelling customers one question about why they leave and route answers to product, so we fix "
     "the reasons for churn.", ("churn",)),
    ("retention", "Product", "Loyalty discount at the second renewal",
     "Offer a loyalty price to customers renewing for the second time, keeping long-standing accounts "
     "from switching to a competitor.", ()),
    # --- revenue: billing and pricing --------------------------------------------------------------------
    ("revenue", "Product", "Annual billing with a discount",
     "Offer annual plans at two months free, paid up front by card or invoice, to raise revenue and cash "
     "in advance.", ("billing",)),
    ("revenue", "Platform", "Usage-based pricing for API calls",
     "Meter API calls per account and bill overage above the plan's allowance on the monthly invoice.",
     ("billing",)),
    ("revenue", "Product", "Upsell prompts at plan limits",
     "When a team hits its seat or storage limit, show an in-app upgrade prompt to the admin with the next "
     "tier's price.", ()),
    ("revenue", "Platform", "Invoices with VAT for EU customers",
     "Generate compliant invoices with VAT and reverse charge so European companies can buy without "
     "talking to sales.", ("billing",)),
    ("revenue", "Product", "Enterprise tier with SSO and audit log",
     "A new top pricing tier bundling single sign-on, audit log and priority support, sold through sales "
     "at a higher price per seat.", ("pricing",)),
    ("revenue", "Platform", "SEPA direct debit and PayPal payments",
     "Accept payment methods other than cards; many prospects in Europe cannot pay by card and the deals "
     "are lost.", ("billing",)),
    ("revenue", "Product", "Add-on marketplace for paid integrations",
     "Sell premium integrations as paid add-ons on top of any plan, billed monthly with the subscription.",
     ("pricing",)),
    ("revenue", "Platform", "Dunning for failed card payments",
     "Retry failed subscription payments on a schedule and email the billing contact, recovering revenue "
     "lost to expired cards.", ("billing",)),
    ("revenue", "Product", "Price increase for legacy plans",
     "Move customers on the 2019 price list to current pricing with notice and a grace period, raising "
     "revenue per account.", ("pricing",)),
    # --- activation: new accounts reach their first success ---------------------------------------------
    ("activation", "Product", "Onboarding checklist for new workspaces",
     "A checklist of the five steps to a working workspace: create a project, invite the team, import "
     "tasks, connect calendar, finish a task.", ("onboarding",)),
    ("activation", "Product", "Interactive product tour",
     "A guided walkthrough of the board and the timeline for first-time users, skippable, shown on the "
     "first login.", ("onboarding",)),
    ("activation", "Growth", "Welcome email sequence for new sign-ups",
     "Five emails over the first two weeks, each teaching one step of onboarding, sent only until the "
     "account has done that step.", ("onboarding",)),
    ("activation", "Product", "Import from spreadsheets and other tools",
     "New accounts bring their existing tasks in from CSV, Trello or Asana in the first session instead of "
     "starting from an empty workspace.", ()),
    ("activation", "Product", "Starter templates per industry",
     "Offer sample projects for agencies, software teams and event planners so a new workspace is useful "
     "on the first day.", ("onboarding",)),
    ("activation", "Growth", "Invite teammates during onboarding",
     "Ask the new admin to invite colleagues in the onboarding wizard; workspaces with three members "
     "activate far more often.", ("onboarding",)),
    ("activation", "Product", "Empty states that teach the next step",
     "Replace blank screens in a new workspace with a short explanation and one button to the next "
     "onboarding step.", ()),
    ("activation", "Growth", "Onboarding webinar for new admins",
     "A weekly live session where new admins set up their workspace with a product specialist during "
     "their first week.", ("onboarding",)),
)  # fmt: skip
