"""Static vocabulary of the sample SaaS product ("Acme Boards"): people, places, pages, prices.

Every address uses the reserved ``example.*`` domains (RFC 2606), so a sample workspace can never
email a real person by accident.
"""

from __future__ import annotations

LIBRARY = {"name": "nudge-sample", "version": "1.0.0"}

FIRST_NAMES = (
    "Ada",
    "Alan",
    "Amara",
    "Ana",
    "Arjun",
    "Astrid",
    "Bea",
    "Ben",
    "Carlos",
    "Chen",
    "Chloe",
    "Dara",
    "David",
    "Elena",
    "Emeka",
    "Emma",
    "Farah",
    "Felix",
    "Grace",
    "Hana",
    "Hugo",
    "Ines",
    "Isaac",
    "Jonas",
    "Julia",
    "Kai",
    "Kenji",
    "Lars",
    "Leila",
    "Liam",
    "Lucia",
    "Maya",
    "Mateo",
    "Mei",
    "Mohammed",
    "Nadia",
    "Noah",
    "Olga",
    "Omar",
    "Priya",
    "Quinn",
    "Rafael",
    "Ravi",
    "Rosa",
    "Sam",
    "Sara",
    "Sofia",
    "Tariq",
    "Tomás",
    "Uma",
    "Valentina",
    "Wei",
    "Yara",
    "Yusuf",
    "Zoe",
    "Zoë",
    "Björn",
    "Chioma",
    "Élodie",
    "Søren",
)
LAST_NAMES = (
    "Adeyemi",
    "Andersen",
    "Bauer",
    "Costa",
    "Dubois",
    "Eriksson",
    "Fernandes",
    "Garcia",
    "Gupta",
    "Hansen",
    "Ito",
    "Jensen",
    "Kim",
    "Kowalski",
    "Lopez",
    "Martin",
    "Müller",
    "Nakamura",
    "Novak",
    "Okafor",
    "O'Brien",
    "Patel",
    "Quispe",
    "Rossi",
    "Santos",
    "Schmidt",
    "Silva",
    "Singh",
    "Smith",
    "Tanaka",
    "Thompson",
    "Ueda",
    "Varga",
    "Wang",
    "Williams",
    "Xu",
    "Yilmaz",
    "Zhang",
)
EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")

# (IANA time zone, country, currency, whole-hour UTC offset used only to keep sessions in the
# daytime; the exact offset, DST included, is the warehouse's business, not the generator's).
PLACES = (
    ("America/New_York", "US", "USD", -5),
    ("America/Chicago", "US", "USD", -6),
    ("America/Denver", "US", "USD", -7),
    ("America/Los_Angeles", "US", "USD", -8),
    ("America/Toronto", "CA", "CAD", -5),
    ("America/St_Johns", "CA", "CAD", -3),
    ("America/Sao_Paulo", "BR", "BRL", -3),
    ("America/Mexico_City", "MX", "USD", -6),
    ("Europe/London", "GB", "GBP", 0),
    ("Europe/Dublin", "IE", "EUR", 0),
    ("Europe/Berlin", "DE", "EUR", 1),
    ("Europe/Paris", "FR", "EUR", 1),
    ("Europe/Madrid", "ES", "EUR", 1),
    ("Europe/Stockholm", "SE", "EUR", 1),
    ("Europe/Warsaw", "PL", "EUR", 1),
    ("Africa/Lagos", "NG", "USD", 1),
    ("Africa/Nairobi", "KE", "USD", 3),
    ("Asia/Kolkata", "IN", "USD", 5),
    ("Asia/Kathmandu", "NP", "USD", 5),
    ("Asia/Singapore", "SG", "USD", 8),
    ("Asia/Tokyo", "JP", "USD", 9),
    ("Australia/Sydney", "AU", "AUD", 10),
    ("Pacific/Auckland", "NZ", "AUD", 12),
)
# Relative weights of PLACES (more North American and European users, a long tail elsewhere).
PLACE_WEIGHTS = (14, 8, 3, 10, 4, 1, 4, 2, 9, 2, 7, 5, 3, 2, 2, 2, 1, 6, 1, 3, 3, 4, 1)

PLANS = ("free", "pro", "team")
PLAN_WEIGHTS = (60, 30, 10)
PLAN_PRICES = {"pro": 49.0, "team": 199.0}
# Add-ons bought in the app (credit packs, extra seats, template bundles): (amount, items).
ADD_ONS = ((9.0, 1), (19.0, 1), (29.0, 2), (49.0, 1), (129.0, 3), (149.0, 5), (299.0, 10))
ADD_ON_WEIGHTS = (10, 20, 15, 20, 12, 8, 4)

MARKETING_SITE = "https://www.example.com"
APP_SITE = "https://app.example.com"
# (page name, path) of the public site, browsed before signing up.
MARKETING_PAGES = (
    ("Home", "/"),
    ("Pricing", "/pricing"),
    ("Features", "/features"),
    ("Customers", "/customers"),
    ("Blog", "/blog/weekly-planning-that-sticks"),
    ("Blog", "/blog/templates-for-product-teams"),
    ("Docs", "/docs/getting-started"),
)
# (page name, path) inside the app, browsed by signed-in users.
APP_PAGES = (
    ("Dashboard", "/dashboard"),
    ("Projects", "/projects"),
    ("Board", "/projects/board"),
    ("Templates", "/templates"),
    ("Settings", "/settings"),
    ("Billing", "/settings/billing"),
    ("Team", "/settings/team"),
)
APP_PAGE_WEIGHTS = (30, 25, 20, 8, 6, 6, 5)
SIGNUP_METHODS = ("email", "google", "github")
PROJECT_TEMPLATES = ("blank", "kanban", "roadmap", "sprint", "content_calendar")
CTA_LOCATIONS = ("hero", "pricing_table", "navbar", "footer")
