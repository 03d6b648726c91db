"""Generate the extra upload rows of the bundled demo corpus (governance/sample/uploads.jsonl).

The first 43 rows of uploads.jsonl are written by hand; this script keeps them and appends rows
`demo-101` onwards, composed from phrase parts below with a fixed seed, so running it again
gives the same file byte for byte.

Why more rows, measured with the offline MiniLM embedder and the report's clustering as shipped:
with the 43 hand-written uploads alone the parcel scams sit in one cluster with every crypto and
phishing upload (too few to form groups of their own) and no wave stands out; with 30 more parcel
scams and 10 more crypto and phishing uploads the wave is found but takes in 11 phishing uploads, because phishing lures are varied
(mean pairwise cosine 0.31 against the wave's 0.62) and HDBSCAN keeps sparse neighbours of a
dense group as its low-density members. With enough phishing uploads to form their own groups
(20 more) the wave comes out alone, all 40 parcel scams and nothing else.

    python scripts/make_sample_uploads.py            # rewrites governance/sample/uploads.jsonl
    python scripts/make_sample_uploads.py --check    # exit 1 if the committed file differs

Every row carries `metadata.expected` like the hand-written ones. Names, brands and URLs are
invented (`.example` domains); amounts, tracking numbers and teams are drawn from the seed.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UPLOADS = ROOT / "governance" / "sample" / "uploads.jsonl"
FIRST_GENERATED = 101
SEED = 20260601

# --------------------------------------------------------------------------- parcel-fee scams (the wave)

PARCEL_OPENERS = ["Your parcel", "Your package", "Your delivery", "Shipment {trk}", "Parcel {trk}",
                  "Your order #{num}", "The item you ordered", "Package {trk}"]
PARCEL_PROBLEMS = ["is on hold at our {place}", "could not be delivered today", "is waiting at the {place}",
                   "was returned to our {place} after a failed delivery attempt", "has been held at customs",
                   "is stuck at the {place} because the address label is damaged",
                   "missed its delivery slot this morning"]
PARCEL_PLACES = ["depot", "sorting centre", "local hub", "distribution centre", "regional warehouse"]
PARCEL_FEES = ["an unpaid {kind} fee of {amt}", "a {kind} charge of {amt}", "an outstanding {kind} balance of {amt}",
               "a small {kind} fee ({amt})"]
PARCEL_FEE_KINDS = ["delivery", "redelivery", "customs", "handling", "postage", "import duty", "storage"]
PARCEL_ACTIONS = ["Pay now at {url}", "Settle it at {url} to book a new delivery slot",
                  "Confirm your address and pay via {url}", "Tap the link to pay and release it: {url}",
                  "Reschedule and pay online at {url}", "Complete the payment at {url}"]
PARCEL_URGENCY = ["within 24 hours", "today", "before 6pm", "within 48h", "by midnight"]
PARCEL_THREATS = ["or it will be returned to the sender", "or the item will be destroyed",
                  "or it goes back to the warehouse", "to avoid extra storage charges"]
PARCEL_PREFIXES = ["DELIVERY NOTICE:", "Courier alert:", "Final reminder:", "Postal service:", "Tracking update:",
                   "Action needed:", ""]
PARCEL_DOMAINS = ["parcel-release", "redelivery-desk", "track-and-pay", "my-delivery-fee", "parcel-hold-centre",
                  "shipment-pay", "courier-reschedule", "post-fee-portal"]


def _amount(rng: random.Random) -> str:
    value = rng.choice([1.20, 1.45, 1.50, 1.75, 1.99, 2.00, 2.30, 2.50, 2.80, 2.99, 3.10, 3.49])
    return rng.choice(["£{:.2f}", "€{:.2f}", "${:.2f}", "{:.2f} EUR", "{:.2f} GBP"]).format(value)


def parcel_scam(rng: random.Random, variant: int) -> str:
    fill = dict(trk=f"{rng.choice('GBRXDE')}{rng.choice('BKLMNP')}{rng.randint(1000, 99999)}",
                num=rng.randint(10000, 999999), place=rng.choice(PARCEL_PLACES),
                url=f"{rng.choice(PARCEL_DOMAINS)}.example/{rng.choice(['pay', 'track', 'r', 'fee'])}",
                kind=rng.choice(PARCEL_FEE_KINDS), amt=_amount(rng))
    opener = rng.choice(PARCEL_OPENERS).format(**fill)
    problem = rng.choice(PARCEL_PROBLEMS).format(**fill)
    fee = rng.choice(PARCEL_FEES).format(**fill)
    action = rng.choice(PARCEL_ACTIONS).format(**fill)
    urgency, threat = rng.choice(PARCEL_URGENCY), rng.choice(PARCEL_THREATS)
    shapes = [
        f"{opener} {problem}. We need {fee} before we can try again. {action} {urgency} {threat}.",
        f"{opener} {problem}. To receive it, {fee} must be paid {urgency}. {action}",
        f"We tried to deliver {opener[0].lower() + opener[1:]} but it {problem.removeprefix('is ')}. "
        f"There is {fee} to pay. {action}",
        f"{opener} {problem}. {action} {urgency}; the fee is {fill['amt']}.",
        f"Hi, {opener[0].lower() + opener[1:]} {problem}. Please pay {fee} {urgency} {threat}. {action}",
    ]
    text = shapes[variant % len(shapes)]
    prefix = rng.choice(PARCEL_PREFIXES)
    return f"{prefix} {text}" if prefix else text


# --------------------------------------------------------------------------- crypto promotions

COINS = ["$ROCKET", "NOVA", "$PEPEX", "LUNARY", "$GIGA", "ORBIT", "$FLOKO", "ZAPCOIN"]
CRYPTO_SHAPES = [
    "Stop working for a boss. Our copy-trading app mirrors the top {coin} traders and my account grew {pct}% since "
    "spring. Link in bio, first {n} sign-ups trade free {em}",
    "{coin} burns half its supply tonight. Every holder's bag goes up in value automatically, so get in at {site} "
    "while it is still under a cent {em}",
    "Our private investment club guarantees {daily}% a day on any crypto deposit. Invite three friends and your "
    "returns double. Join at {site}",
    "Elon-style giveaway: to celebrate the launch of {coin} we return 2x every ETH sent to the event wallet. Only "
    "the next {n} transfers count!",
    "{coin} presale is live and early buyers are already up {pct}%. Only {n} whitelist spots left, connect your "
    "wallet at {site} before the price jumps {em}",
    "I made ${gain:,} in {days} days with a crypto signals group. They post the coin, you buy, you sell at the top. "
    "DM me 'SIGNAL' and I'll add you {em}",
    "Double your BTC in 24 hours! Send any amount between 0.01 and 1 BTC to our promo wallet and receive twice "
    "that back. Offer ends when the {n} slots are gone.",
    "Passive income for real: our staking pool pays {daily}% every day on USDT, no lock-up, withdraw anytime. "
    "Over {n} members are earning already at {site}",
    "Whales are loading up on {coin} before the big exchange listing next week. Under a cent now, analysts say "
    "100x is easy. Buy now and hold {em}",
    "Claim your free {coin} airdrop: the first {n} wallets get tokens worth ${gain:,}. Pay the small 0.03 ETH gas "
    "fee at {site} to unlock it.",
]


def crypto_spam(rng: random.Random, shape: str) -> str:
    return shape.format(
        coin=rng.choice(COINS), pct=rng.choice([300, 850, 1200, 2400]), n=rng.choice([200, 500, 1000, 2500]),
        site=f"{rng.choice(['moon', 'pump', 'gem', 'alpha'])}-{rng.choice(['launch', 'pool', 'drop'])}.example",
        gain=rng.choice([4800, 7250, 12400, 31000]), days=rng.choice([3, 5, 9, 14]),
        daily=rng.choice([2, 3, 4, 6]), em=rng.choice(["🚀", "🚀🚀", "🌕", "💎🙌", ""])).strip()


# --------------------------------------------------------------------------- phishing lures

PHISHING_SHAPES = [
    "Your {service} account has been flagged for unusual activity. Confirm it is you by entering your sign-in code "
    "and password at {site}; unconfirmed accounts are closed after {hours} hours.",
    "Invoice {invoice} is overdue. View the attached statement on our secure portal ({site}) with your company "
    "login to avoid a late payment fee.",
    "Voicemail received from +44 7700 900{hours}. To listen, sign in to your {service} account at {site}.",
    "Congratulations, your {service} account was selected for a loyalty reward. Verify your card at {site} to "
    "claim the {amount} credit.",
    "Dear customer, your parcel tracking account has been locked after three failed sign-ins. Unlock it within "
    "{hours} hours by re-entering your password at {site}.",
    "Your {service} subscription has been cancelled because your card was declined. Re-activate it today at {site} "
    "with your card details.",
    "Tax refund notice: you are due {amount}. Submit your bank login at {site} so the payment can be released.",
    "IT notice: all staff must re-validate their {service} credentials before Friday. Sign in at {site} or your "
    "access will be removed.",
    "Security alert: a sign-in to your account from a new device was blocked. If this was not you, verify your "
    "identity at {site} within {hours} hours or the account will be suspended.",
    "Your {service} password will expire in {hours} hours. Keep your current password by signing in here: {site}",
    "We were unable to process your last payment. Update your billing details at {site} to avoid losing access "
    "to your {service} account.",
    "{sender} shared a file with you: \"{doc}\". Sign in with your work email and password to open the document.",
    "Your mailbox is almost full and new messages are being held. Log in at {site} to release them and upgrade "
    "your storage for free.",
    "Refund pending: you are owed {amount} from an overpayment. Confirm your card number and expiry date at {site} "
    "to receive it.",
]


def phishing(rng: random.Random, shape: str) -> str:
    return shape.format(
        site=f"{rng.choice(['account', 'secure', 'login', 'verify'])}-{rng.choice(['check', 'center', 'portal'])}"
             f".example", hours=rng.choice([12, 24, 48]),
        service=rng.choice(["email", "webmail", "online banking", "cloud storage"]),
        sender=rng.choice(["HR Department", "Accounts Payable", "Your manager", "IT Support"]),
        doc=rng.choice(["Salary_review_Q3.pdf", "Invoice_88341.xlsx", "Bonus_schedule.docx", "Contract_final.pdf"]),
        amount=rng.choice(["£184.20", "$96.50", "€212.00"]), invoice=f"INV-{rng.randint(10000, 99999)}")


# --------------------------------------------------------------------------- recipes

DISHES = [
    ("Lentil soup", "fry an onion, a carrot and a celery stick in olive oil", "add red lentils and stock",
     "simmer", 25, "Blend half of it and finish with lemon juice."),
    ("Tomato pasta", "warm garlic in olive oil", "add a tin of chopped tomatoes and a pinch of chilli",
     "let it bubble", 15, "Toss with spaghetti and torn basil."),
    ("Banana bread", "mash three ripe bananas", "beat in melted butter, sugar, an egg and self-raising flour",
     "bake at 180°C", 50, "Cool in the tin before slicing."),
    ("Chicken curry", "brown diced chicken thighs", "stir in curry paste, coconut milk and spinach",
     "simmer gently", 20, "Serve with rice and coriander."),
    ("Shakshuka", "soften peppers and onion with cumin and paprika", "pour in tomatoes and crack in four eggs",
     "cover and cook", 8, "Scatter feta and parsley and eat with bread."),
    ("Pancakes", "whisk flour, milk, two eggs and a pinch of salt", "pour thin rounds into a hot buttered pan",
     "cook each side", 1, "Serve with lemon and sugar."),
    ("Roast vegetables", "cut squash, red onion and peppers into chunks", "toss with oil, thyme and salt",
     "roast at 200°C", 35, "Turn once halfway for even colour."),
    ("Fried rice", "scramble two eggs in a hot wok", "add cold cooked rice, peas, spring onion and soy sauce",
     "stir-fry", 5, "Finish with a few drops of sesame oil."),
    ("Guacamole", "mash two ripe avocados", "mix in lime juice, chopped tomato, red onion and coriander",
     "rest it", 10, "Season well and serve with tortilla chips."),
    ("Porridge", "put oats, milk and a pinch of salt in a pan", "stir over a medium heat",
     "cook", 5, "Top with berries and a spoon of honey."),
    ("Vegetable stir-fry", "slice broccoli, carrots and mushrooms", "fry them with ginger and garlic in a wok",
     "toss over high heat", 4, "Add soy sauce and serve over noodles."),
    ("Lemon drizzle cake", "cream butter and sugar", "beat in eggs, flour and lemon zest",
     "bake at 170°C", 45, "Pour lemon syrup over the warm cake."),
]


def recipe(rng: random.Random, variant: int) -> str:
    name, prep, build, cook, minutes, finish = DISHES[variant % len(DISHES)]
    minutes = minutes + rng.choice([-5, 0, 0, 5]) if minutes > 10 else minutes
    took = "a minute" if minutes == 1 else f"{minutes} minutes"
    return rng.choice([
        f"{name}: {prep}, then {build}. {cook[0].upper() + cook[1:]} for about {took}. {finish}",
        f"My easy {name.lower()} — {prep}. Next {build} and {cook} for {took}. {finish}",
        f"Quick {name.lower()} for two. First {prep}. Then {build}, {cook} for {took}. {finish}",
    ])


# --------------------------------------------------------------------------- match reports

TEAMS = ["Northgate United", "Riverside Athletic", "Lakeshore Falcons", "Millbrook Town", "Hillcrest Rangers",
         "Kingsport City", "Ashford Wanderers", "Bayview Hawks"]


def match_report(rng: random.Random, variant: int) -> str:
    home, away = rng.sample(TEAMS, 2)
    a, b = rng.randint(2, 4), rng.randint(0, 1)
    shapes = [
        f"{home} beat {away} {a}-{b} on Saturday. The opener came from a corner after {rng.randint(8, 30)} minutes "
        f"and the substitute added another late on to seal the points.",
        f"A stoppage-time penalty gave {home} a 2-1 win at {away}, who had led since the first half through a "
        f"deflected free kick.",
        f"{home} stay top after a goalless draw with {away}. Both keepers were busy, and the hosts hit the post "
        f"twice in the second half.",
        f"Ice hockey: {home} won {a}-{a - 1} over {away} in overtime, their captain scoring on a power play after "
        f"{rng.randint(2, 4)} minutes of the extra period.",
        f"{home} won {rng.randint(90, 112)}-{rng.randint(80, 89)} against {away}, their guard scoring "
        f"{rng.randint(24, 38)} points with {rng.randint(6, 11)} assists in a fast fourth quarter.",
        f"Stumps on day one: {home} made {rng.randint(240, 330)} for {rng.randint(5, 8)} after their opener hit a "
        f"patient century, and the visiting seamers from {away} struggled on a flat pitch.",
        f"{home} scored {a + 1} tries to {b} to beat {away} {rng.randint(24, 35)}-{rng.randint(3, 17)}, with the "
        f"fly-half kicking every conversion in the wind.",
        f"The second seed came from a set down to win {rng.choice(['4-6, 6-3, 6-4', '3-6, 7-5, 6-2', '6-7, 6-4, 6-3'])} "
        f"and reach the final, breaking serve {rng.randint(3, 6)} times.",
    ]
    return shapes[variant % len(shapes)]


# --------------------------------------------------------------------------- the file

PLAN = [  # (asset prefix, expected, how many, generator, how many variants it has)
    ("up-parcel", "emerging", 30, parcel_scam, 5),
    ("up-crypto", "crypto_spam", 15, lambda rng, v: crypto_spam(rng, CRYPTO_SHAPES[v]), len(CRYPTO_SHAPES)),
    ("up-phish", "phishing", 20, lambda rng, v: phishing(rng, PHISHING_SHAPES[v]), len(PHISHING_SHAPES)),
    ("up-recipe", "recipes", 15, recipe, len(DISHES)),
    ("up-sports", "sports", 15, match_report, 9),
]


def _variants(rng: random.Random, variants: int):
    """Shuffled rounds of every variant, so no variant comes twice before each has come once."""
    while True:
        order = list(range(variants))
        rng.shuffle(order)
        yield from order


def generated_rows(seed: int = SEED) -> list[dict]:
    rng = random.Random(seed)
    rows, seen = [], set()
    number = FIRST_GENERATED
    for prefix, expected, count, make, variants in PLAN:
        made, variant = 0, _variants(rng, variants)
        while made < count:
            text = make(rng, next(variant))
            if text in seen:  # a repeat adds nothing to the story; draw again
                continue
            seen.add(text)
            rows.append({"event_id": f"demo-{number:03d}", "asset_id": f"{prefix}-{number:03d}", "tenant": "demo",
                         "text": text, "metadata": {"expected": expected}})
            number, made = number + 1, made + 1
    return rows


def handwritten_rows(path: Path) -> list[str]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [line for line in lines if int(json.loads(line)["event_id"].split("-")[-1]) < FIRST_GENERATED]


def render(path: Path) -> str:
    rows = handwritten_rows(path) + [json.dumps(row, ensure_ascii=False) for row in generated_rows()]
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=UPLOADS)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is not what this script writes")
    args = parser.parse_args(argv)
    text = render(args.out)
    if args.check:
        same = args.out.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{args.out} differs from what the generator writes", file=sys.stderr)
        return 0 if same else 1
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}: {text.count(chr(10))} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
