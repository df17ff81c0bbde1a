"""Builds corpus.jsonl: labelled, synthetic short posts and replies for measuring the policy pack.

Run ``python tests/data/policy/build_corpus.py`` to regenerate (seeded, so the output is stable). Every
identifier is computed with valid check digits from random digits (never a real person's number); phone
numbers come from ACMA's fictitious ranges (0491 57x xxx, (0x) 5550 xxxx, (0x) 7010 xxxx); e-mail domains
are the reserved example.com/.org/.net. Each item lists ALL the measured labels that a careful human moderator
would put on it; measured labels absent from an item are negatives for it.

Written by the same engineer who wrote the au-gov rules, so it is not an independent test set: it shows
what the pack was designed to catch and the hard negatives it was designed to avoid. Independent labelled
samples from real (de-identified) agency traffic are the next step.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from services.policy import checksums

rng = random.Random(20261126)
OUT = Path(__file__).with_name("corpus.jsonl")

MEASURED = [
    "pii:tfn",
    "pii:medicare",
    "pii:crn",
    "pii:card",
    "pii:phone",
    "pii:email",
    "pii:address",
    "pii:dob",
    "pii:passport",
    "pii:bank",
    "business_id:abn",
    "business_id:acn",
    "self_harm",
    "threat",
    "emergency",
    "dfv",
    "profanity",
    "abuse",
    "spam",
    "political",
    "complaint",
    "media",
    "defamation_risk",
    "pii_request",
    "disclosure",
    "pii:staff_name",
    "pii:image",
    "flooding",
    "legal",
    "defamation_complaint",
    "authorisation",
]


def digits(n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def tfn() -> str:
    while True:
        base = digits(8)
        check = checksums.tfn_check_digit(base)
        if check is not None:
            return base + check


def medicare() -> str:
    base = str(rng.randint(2, 6)) + digits(7)
    return base + checksums.medicare_check_digit(base) + str(rng.randint(1, 9))


def abn() -> str:
    return checksums.abn_from_base(digits(9))


def acn() -> str:
    base = digits(8)
    return base + checksums.acn_check_digit(base)


def card() -> str:
    partial = "4" + digits(14)
    return partial + checksums.luhn_check_digit(partial)


def crn() -> str:
    return digits(9) + rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ")


def group(value: str, sizes: tuple[int, ...], sep: str = " ") -> str:
    out, i = [], 0
    for s in sizes:
        out.append(value[i : i + s])
        i += s
    if i < len(value):
        out.append(value[i:])
    return sep.join(out)


MOBILES = [
    f"0491 57{d}"
    for d in (
        "0 006",
        "0 156",
        "0 157",
        "0 158",
        "0 159",
        "0 110",
        "0 313",
        "0 737",
        "1 266",
        "1 491",
        "1 804",
        "2 549",
        "2 665",
        "2 983",
        "3 770",
        "3 087",
    )
]
LANDLINES = ["(02) 5550 4321", "(03) 5550 1276", "(07) 7010 2231", "(08) 5550 9032", "02 7010 1188"]
NAMES = ["Jo", "Sam", "Priya", "Tom", "Mei", "Ahmed", "Kylie", "Liam", "Grace", "Nikos", "Aroha", "Dev"]
STREETS = [
    "Wattle Street",
    "Banksia Rd",
    "Gum Tree Avenue",
    "Koala Court",
    "Bottlebrush Drive",
    "Jacaranda Pl",
    "Magpie Crescent",
    "Waratah Parade",
    "Lyrebird Lane",
    "Emu Way",
]

items: list[dict[str, object]] = []


def add(
    text: str, labels: list[str] | tuple[str, ...] = (), direction: str = "inbound", **extra: object
) -> None:
    for label in labels:
        assert label in MEASURED, label
    items.append({"direction": direction, "text": text, "labels": sorted(set(labels)), **extra})


# --- TFN
tfn_templates = [
    "My TFN is {g} can someone please check why my return hasn't been processed",
    "tax file number {p} - still waiting on my refund after 6 weeks",
    "Hi @ATO I put my tfn {d} on the form, is that right?",
    "Lodged my return, TFN {g}, and got an error message. Help!",
    "Can you tell me if {g} is linked to my myGov? It's my tax file number",
    "{g} is my TFN, my employer says it's invalid??",
    "why does the app say tax file no. {d} doesn't match",
    "tfn: {p}. Please fix my account",
    "New job asked for my TFN, I gave them {g}. Is that safe?",
    "Accidentally posted my TFN earlier ({g}), can you delete it?",
    "My son's tax file number is {d} and his refund went missing",
    "Is {g} a valid TFN? Got it on a letter",
    "TFN {g} , refund status pls",
    "Tax file number {d}. Need a payment summary asap",
    "for the record my TFN {p} has been on file since 2009",
]
for t in tfn_templates:
    v = tfn()
    add(t.format(g=group(v, (3, 3, 3)), p=group(v, (3, 3, 3), "-"), d=v), ["pii:tfn"])
for legacy in range(4):
    while True:
        base = digits(7)
        last = (-sum(int(d) * w for d, w in zip(base, (10, 7, 8, 4, 6, 3, 5), strict=True))) % 11
        if last < 10:
            break
    old = base + str(last)
    add(
        [
            "My old TFN from the 80s is {g}, is it still valid?",
            "tax file number {d} (the old 8 digit one)",
            "Dad's TFN is {g}, he passed away, what do we do",
            "8 digit TFN {d} not accepted by the portal",
        ][legacy].format(g=group(old, (4, 4)), d=old),
        ["pii:tfn"],
    )

# --- Medicare
med_templates = [
    "My Medicare number is {g} and the claim keeps bouncing",
    "medicare card {g} expired, how do I get a new one",
    "Can you check medicare {d} for me? Rebate never arrived",
    "Medicare no. {g} / IRN 2 - why was my claim rejected",
    "New baby isn't on our card yet, card number {g}",
    "{g} is our family's Medicare card. Please add my daughter",
    "medicare {d} rebate still pending after 3 weeks",
    "I've been charged twice, Medicare {g}",
    "Lost my wallet, Medicare card {g}, what now?",
    "Medicare: {g}. Why can't I link it to myGov",
    "medicare card number {d} is not recognised at the chemist",
    "my medicare is {g} pls help",
]
for t in med_templates:
    v = medicare()
    add(t.format(g=group(v, (4, 5, 1)), d=v), ["pii:medicare"])

# --- CRN
crn_templates = [
    "My CRN is {g} and my payment didn't come through",
    "Centrelink customer reference number {d}, can someone call me",
    "crn {d} - why was my payment cancelled??",
    "Centrelink cut me off. CRN: {g}",
    "Customer reference {g}, I've been on hold for 2 hours",
    "Services Australia lost my forms again. CRN {d}",
    "my centrelink crn {g} isn't linking to mygov",
    "CRN {g}. Rent assistance stopped without notice",
]
for t in crn_templates:
    v = crn()
    add(t.format(g=group(v, (3, 3, 3)), d=v), ["pii:crn"])

# --- cards
card_templates = [
    "I paid the fine with card {g} but it still shows unpaid",
    "Charged twice on my visa {d}!!",
    "card number {g} was declined on your website",
    "Please refund to {g}, expiry 09/27",
    "Your payment page took {d} twice",
    "Used {g} to pay the rego and got no receipt",
    "My debit card {g} was charged for a licence I didn't renew",
    "refund it to my card {d} thanks",
]
for t in card_templates:
    v = card()
    add(t.format(g=group(v, (4, 4, 4, 4)), d=v), ["pii:card"])

# --- phones
phone_templates = [
    "Please call me back on {m}, I've been waiting since Monday",
    "Can someone ring me? {m}",
    "My number is {m} if the case officer needs it",
    "Call {l} after 3pm, that's my home phone",
    "Text me on {m} when the permit is ready",
    "Nobody called back. I'm on {m}",
    "my mum's number is {l}, she can't use the app",
    "reach me at +61 {mi} any time",
    "I left my number {m} with the front desk three times",
    "Phone {l} - ask for Kylie",
    "Still no call back on {m}",
    "Contact me on {m} about the fence complaint",
    "Home {l}, mobile {m}",
    "pls ring {m} re: my application",
]
for i, t in enumerate(phone_templates):
    m = MOBILES[i % len(MOBILES)]
    add(t.format(m=m, l=LANDLINES[i % len(LANDLINES)], mi=m[1:]), ["pii:phone"])

# --- e-mail
email_templates = [
    "Email me at {u}@example.com, I can't get through on the phone",
    "Send the form to {u}.{v}@example.org please",
    "my email is {u}{n}@example.net - nobody has replied",
    "Can you forward it to {u}@example.com? Thanks",
    "I emailed {u}_{v}@example.org from my work account",
    "Reply to {u}@example.com not this account",
    "contact {u}{n}@example.com re the rebate",
    "My daughter's email is {v}.{u}@example.net",
    "Sent from {u}@example.org, please check your inbox",
    "email: {u}.{v}{n}@example.com",
]
for t in email_templates:
    u, v = rng.choice(NAMES).lower(), rng.choice(NAMES).lower()
    add(t.format(u=u, v=v, n=rng.randint(1, 99)), ["pii:email"])

# --- addresses
address_templates = [
    "The bin at {n} {s} hasn't been collected for 3 weeks",
    "I live at {n} {s}, the streetlight has been out for a month",
    "Please send the letter to {n} {s}, Dubbo NSW 2830",
    "Pothole outside {n} {s} damaged my tyre",
    "Unit {u}/{n} {s} has no water pressure",
    "My address is {n} {s} and the mail keeps going to the wrong house",
    "Tree down across {n} {s}, blocking the driveway",
    "Noise complaint: {n} {s} every night until 2am",
    "Moved to {n} {s} last month, how do I update my details",
    "{n} {s} - footpath has been dug up since June",
    "Inspector came to {n} {s} but nobody knocked",
    "Water leak in front of {n} {s}, been running all day",
]
for t in address_templates:
    add(t.format(n=rng.randint(1, 240), s=rng.choice(STREETS), u=rng.randint(1, 30)), ["pii:address"])

# --- DOB
dob_templates = [
    "My date of birth is {d} but the system has it wrong",
    "DOB {d} - why can't I log in?",
    "I was born on {d} so I should be eligible for the pension",
    "born {d}, still no seniors card",
    "D.O.B. {d}. Please fix the record",
    "My son's birthday is {d} and the enrolment form rejected it",
    "date of birth: {d}",
    "Your form says I'm too young but I was born {d}",
]
for t in dob_templates:
    d = f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(1940, 2010)}"
    add(t.format(d=d), ["pii:dob"])
add("Born 14 March 1962 and still waiting on my age pension", ["pii:dob"])

# --- passport, bank
for t in [
    "My passport number is N{d} and it expires next month",
    "Passport {l}{d} was stolen, what do I do",
    "Can you check the status of passport PA{d2}?",
    "Renewing passport E{d}, been 8 weeks",
]:
    add(t.format(d=digits(7), d2=digits(7), l=rng.choice("NEDFACUX")), ["pii:passport"])
for t in [
    "BSB {b} account {a}, please pay the refund there",
    "Updated my bank details: BSB {b} acct {a}",
    "My BSB is {b} and account number {a}, why did the payment fail",
    "bsb {b}, account no. {a} - refund still not received",
]:
    add(t.format(b=group(digits(6), (3, 3), "-"), a=digits(8)), ["pii:bank"])

# --- ABN / ACN (hard negatives for TFN)
abn_templates = [
    "Our ABN is {g} and the grant portal says it's invalid",
    "ABN {g} - can you confirm we're registered for GST?",
    "Supplier ABN {d} hasn't been paid for the invoice",
    "Sole trader here, ABN {g}, how do I claim the rebate",
    "Invoice from ABN {g} was rejected by the portal",
    "we quoted ABN {d} on the tender but heard nothing",
    "Business name registered, ABN {g}. What's next?",
    "Payment to ABN {g} bounced twice",
    "the charity's ABN is {g} for the donation receipt",
    "Tender closed, our ABN {g} was on it",
    "Grant paid to the wrong ABN {g}",
    "Check ABN {d} please, the name on the lookup is wrong",
]
for t in abn_templates:
    v = abn()
    add(t.format(g=group(v, (2, 3, 3, 3)), d=v), ["business_id:abn"])
for t in [
    "Our company ACN {g} has changed its registered office",
    "ACN {g} - director ID application stuck",
    "ASIC shows ACN {d} as deregistered, that's wrong",
]:
    v = acn()
    add(t.format(g=group(v, (3, 3, 3)), d=v), ["business_id:acn"])

# --- PI hard negatives
negatives = [
    "The grant was $1,234,567 last year, why is it less now?",
    "Council spent $123,456,782 on the new pool and it's still shut",
    "Paid $250.00 on 03/04 and nothing happened",
    "Invoice INV-20931 from March is still unpaid",
    "My reference is REF-2024-118392, any update?",
    "Case number 5012-33871 has been open since January",
    "Receipt 88213 for the rego renewal never arrived",
    "Call Lifeline on 13 11 14 if you're struggling, they helped me",
    "I rang 1800 551 800 and they were great",
    "The number on your site, 13 28 61, just rings out",
    "Rang 1300 659 467 last night, thank you for sharing it",
    "Phoned 132 011 three times today",
    "The meeting is on 12/05/2026 at 10am in the library",
    "Applications close 30/06/2025 - is that still right?",
    "My appointment was on 3/11/2025 but nobody showed",
    "Flight QF401 at 07:30 was cancelled",
    "Route 380 bus didn't turn up at 8:15",
    "Population of Sydney is 5,450,496 according to the ABS",
    "The wait time was 45 minutes, ridiculous",
    "Opening hours 8:30am-5pm, Mon to Fri? Your site says 9-4",
    "Postcode 2830 still has no mobile coverage",
    "The M4 has been closed between exits 12 and 15 all week",
    "Our office is at Level 3, 50 Marcus Clarke Street, Canberra - can you update Google Maps?",
    "Email the ministerial team at enquiries@treasury.gov.au?",
    "I sent it to feedback@servicesaustralia.gov.au already",
    "Used the contact form at https://www.ato.gov.au/contact and got no reply",
    "Tracking number 7732 9981 4410 says delivered but nothing came",
    "Order 112-4417789-334 from the gov shop is late",
    "Rego renewal for plate ABC123 went through twice",
    "Born and raised in Ballarat and never seen roads this bad",
    "Happy birthday to the best library staff in town!",
    "I've been a customer since 2012 and this is the worst service",
    "Section 355-25 of the TAA says you can't disclose that",
    "My payment of $482.30 came through today, thanks!",
    "Version 4.12.1 of the app crashes on login",
    "The BSB field on the form won't accept dashes",
    "What's the difference between a TFN and an ABN?",
    "Do I need my Medicare card to book a vaccine?",
    "How do I find my CRN? I've lost the letter",
    "Is the passport office open on Saturdays?",
    "We planted 1,200 trees on 22 Wattle Grove this weekend",
    "Temperature hit 45 degrees in Penrith today",
    "Invoice total was 123456789 cents, that can't be right",
    "Booking ref 482913775, can I change the date?",
    "Phone the office on 02 6141 6000 - it's on their website",
]
for t in negatives:
    add(t)

# --- crisis
self_harm = [
    "I can't do this anymore. I want to kill myself",
    "Centrelink cut my payment and honestly I want to end my life",
    "Lost my job and my house. I'm thinking about suicide",
    "No reason to live anymore, nobody cares",
    "If this debt isn't fixed I'm going to end it all",
    "Everyone would be better off without me",
    "I've been having suicidal thoughts since the letter arrived",
    "I just want to die, I can't keep going like this",
    "Tonight I'm going to take my own life",
    "I'm so tired. I don't want to wake up tomorrow",
    "Thinking of killing myself, the debt is too much",
    "I cut myself again last night because of all this stress",
    "I keep thinking about an overdose. I'm scared",
    "Honestly I'd be better off dead than dealing with this",
    "Nothing to live for since my wife died and now this",
    "I want to hurt myself, I don't know who to talk to",
    "i wanna die, nobody ever answers the phone",
    "I can't go on like this, I'm done",
    "Planning to say goodbye to everyone this weekend",
    "my brother says he wants to kill himself, please help",
    "I've been self harming and the counsellor waitlist is 6 months",
    "Ending my life seems like the only way out of this debt",
]
for t in self_harm:
    add(t, ["self_harm"])
threats = [
    "I'm going to kill the minister if this isn't fixed",
    "I'll stab someone at your office if you don't pay me",
    "I know where you live and you'll regret this",
    "Next time I come in I'm bringing a gun to the office",
    "There's a bomb in your building, better evacuate",
    "I'll burn down the centre on Monday",
    "I will hurt your staff if they refuse me again",
    "Watch your back, I'm coming to the office tomorrow",
    "I'm gonna shoot everyone at that counter",
    "I will murder the case officer who rejected me",
    "white powder is in the mail to your office",
    "I'll blow up the building if my payment is cut",
    "Going to bash the guy at the front desk next time",
    "I'm going to attack the office on Friday",
]
for t in threats:
    add(t, ["threat"])
emergencies = [
    "We're trapped on the roof, water is rising fast. Please send help",
    "My house is on fire and the fire truck hasn't come",
    "Flood water is coming into the house, we need rescue",
    "Stranded in the car by floodwater near the causeway",
    "Smoke everywhere, fire is getting close to the house, what do we do",
    "My neighbour collapsed and isn't breathing",
    "We need an ambulance at the showground now",
    "Kids are trapped in the house, the water is up to the windows",
    "Can't breathe, the smoke is so thick here",
    "SOS trapped by fire on the ridge road",
    "Dad is having a heart attack and the phone lines are down",
    "Our car is under water and we're stuck on the bonnet",
    "Family is cut off by flood water, the road is gone",
    "Building is on fire on Main St, people inside",
]
for t in emergencies:
    add(t, ["emergency"])
dfv = [
    "My partner threatens to hurt me if I go to Centrelink",
    "He's going to kill me if he finds out I applied",
    "I'm scared to go home tonight",
    "My husband hits me and controls all the money",
    "I am being abused at home and need the crisis payment",
    "My ex keeps threatening to hurt the kids",
]
for t in dfv:
    add(t, ["dfv"])

figures = [
    "This form is killing me, 47 pages!",
    "The hold music is killing me",
    "I could die of embarrassment, I sent the wrong document",
    "Dying to know when the new bridge opens",
    "The queue at the service centre was murder today",
    "I'd kill for a shorter wait time",
    "My phone battery died while I was on hold",
    "Can you shoot me an email with the details?",
    "Kill two birds with one stone and fix the website too",
    "The app crashed and burned again",
    "That deadline nearly killed me but I got it in",
    "Suicide prevention week events near Geelong?",
    "Great work on the suicide prevention campaign",
    "My car died on the highway, is roadside assist covered?",
    "I'm dead tired of calling every day",
    "The website is dead again",
    "This heat is going to be the death of me",
    "Laughed so hard I nearly died at your last post",
    "The bomb cyclone last week flooded our street",
    "Are the fire trails in the state forest open?",
    "Will the flood levy be on our rates notice?",
    "How do I apply for the bushfire recovery grant?",
    "Is there a fire ban in the ACT today?",
    "Our footy team got smashed, killed it last season though",
    "The new exhibition absolutely kills",
    "I'm stuck in the queue for two hours",
    "The form's trapped me in a loop, it keeps going back to page 1",
    "Your new logo is fire",
    "Shoot, I forgot to attach the payslip",
    "We're drowning in paperwork for the small business grant",
    "My kids are driving me crazy during the school holidays",
    "I want to die laughing at the new road signs",
    "Having a heart attack looking at this electricity bill lol",
    "The minister's speech was a bomb",
    "Mental health services near me? Asking for a friend who is struggling with anxiety",
]
for t in figures:
    add(t)

# --- moderation
for t in [
    "This is fucking ridiculous, 3 hours on hold",
    "What a load of bullshit from the department",
    "You useless bastards lost my forms again",
    "f*ck this app, it never works",
    "sh1t service as usual",
    "Absolute shitshow at the counter today",
    "the wankers in head office don't care",
    "What the f**k is going on with payments",
    "This is bullsh*t",
    "Arsehole manager hung up on me",
]:
    add(t, ["profanity"])
for t in [
    "The new Scunthorpe exchange program looks great",
    "Is there a class on tax assessments at the library?",
    "I was pricked by a needle in the park, is that reported?",
    "Reading Dickens at the library tonight",
    "Shiitake mushroom workshop at the community garden?",
]:
    add(t)
for t in [
    "You're a worthless piece of garbage and so is your department",
    "Here's her home address, everyone should go visit her",
    "kys you useless clerk",
    "That officer is a disgusting excuse for a human",
]:
    add(t, ["abuse"])
for t in [
    "Earn $5000 a week from home! DM me for details",
    "Make $800 a day with crypto, guaranteed returns",
    "Invest in bitcoin now and get 300% profit",
    "Click here to claim your free government grant: http://bit.ly/abc",
    "Verify your account at mygov-login.com.au.co",
    "Work from home and earn fast, message me",
    "DM me for a loan approval today, no credit checks",
    "Forex signals that guarantee profit every week, join now",
    "Tap the link in bio for your free refund offer",
]:
    add(t, ["spam"])
for t in [
    "Is the free bus to the show still running?",
    "Where can I get a free flu shot?",
    "Can I invest my super in a first home?",
    "Message me when the road reopens please",
    "The grant portal link on your site is broken",
]:
    add(t)
for t in [
    "Vote Labor out at the next election",
    "Never voting for the Liberals again after this",
    "The Greens policy on this is a disaster",
    "Put One Nation last, everyone",
    "The Coalition government wrecked this program",
    "Labor's policy on housing is a joke",
    "Voting Greens because of this mess",
    "LNP candidate hasn't answered a single email",
]:
    add(t, ["political"])
for t in [
    "The labour market data came out today, when's the next release?",
    "Be liberal with the sunscreen at the festival!",
    "Is Labour Day a public holiday in Queensland?",
    "The Greens at the botanic garden look amazing",
    "Vote for your favourite photo in the library competition",
]:
    add(t)
for t in [
    "I want to make a complaint about the officer I spoke to",
    "I'm lodging a formal complaint about this",
    "I'll be taking this to the Ombudsman",
    "My lawyer will be in touch",
    "I'm going to sue the department for this",
    "Submitted an FOI request 60 days ago, nothing",
    "This is a privacy breach, I'm reporting it to the OAIC",
    "Freedom of information request ignored again",
    "See you in court",
    "I'll take legal action if my data was leaked",
]:
    add(t, ["complaint"])
for t in [
    "Thanks for sorting my complaint so quickly!",
    "How do I complain about noise from the neighbours' dog? Is there a form?",
]:
    add(t)  # the first is praise; the second asks how to complain (a service question)
for t in [
    "I'm a journalist with the Herald, can I get a comment from the department?",
    "Working on a story about payment delays, who do I contact?",
    "Media enquiry: are you aware of the outage?",
    "I'm a reporter at ABC Radio, on deadline for 3pm",
    "Seeking a statement from the minister about the data breach",
]:
    add(t, ["media"])
for t in [
    "Loved the story time at the library today",
    "Is there a deadline for the rebate?",
]:
    add(t)
for t in [
    "The regional manager is corrupt and everyone knows it",
    "Your director stole money from the grants program",
    "John Citizen is a crook who takes bribes",
    "That councillor is on the take",
    "The minister rorted the sports grants and pocketed taxpayer money",
    "The case officer is a liar and a fraud",
]:
    add(t, ["defamation_risk"])
for t in [
    "Is this text a scam? It says I owe a fine",
    "This email is a fraud, don't click it",
    "How do I report tax fraud anonymously?",
    "The fraud hotline number isn't working",
]:
    add(t)

# --- outbound replies
for t in [
    "Hi, please send us your TFN and we'll look into it.",
    "Can you DM us your date of birth and address so we can check?",
    "Please provide your Medicare number in this thread.",
    "What is your CRN? We'll chase it up.",
    "Reply with your phone number and we'll call you.",
    "Could you share your bank details so we can process the refund?",
    "Please tell us your myGov password so we can reset it.",
]:
    add(t, ["pii_request"], direction="outbound", visibility="public")
for t in [
    "Please don't share your TFN here. Call us on 13 28 61 instead.",
    "We'll never ask for your password on social media.",
    "Please do not post your Medicare number publicly. Call 132 011.",
    "For privacy, don't send personal details here; contact us through myGov.",
]:
    add(t, direction="outbound", visibility="public")
for t in [
    "Your claim was rejected because of missing documents.",
    "We can see that you have an outstanding debt of $1,200.",
    "Your payment of $482 was cancelled on Monday.",
    "Your return shows a refund of $2,300.",
]:
    add(t, ["disclosure"], direction="outbound", visibility="public")
for t in [
    "The Labor government has delivered this program.",
    "Unlike the Opposition, we are fixing this.",
    "Vote for better services at the election.",
]:
    add(t, ["political"], direction="outbound", visibility="public")
for t in [
    "Thanks for getting in touch. Processing times are on our website: https://www.servicesaustralia.gov.au",
    "If you're struggling, Lifeline is available 24/7 on 13 11 14.",
    "Sorry for the wait. Our phone line is 132 011, open 8am to 5pm weekdays.",
    "The road reopened at 6am. Check live traffic at https://www.livetraffic.com",
    "You can update your details in myGov. Let us know if you get stuck.",
    "We're sorry you've had this experience. Please send us a private message so we can help.",
    "Applications for the grant close on 30 June.",
    "The Australian Government has extended the rebate until 2027.",
    "Bins in your area are collected on Tuesdays.",
    "You can lodge a complaint online or call us on 1800 132 468.",
    "We've passed your feedback to the team. Thanks for letting us know.",
    "The ABN Lookup site can confirm a business's details: https://abr.business.gov.au",
]:
    add(t, direction="outbound", visibility="public")
for t in [
    "Thanks for the details. Your TFN 123 456 782 is now linked.",
    "We have called you on 0491 570 006 and left a message.",
    "We've sent the letter to 12 Wattle Street as requested.",
]:
    # Echoing the customer's own details is still disclosure in a public reply (OUT-05).
    label = {"TFN": "pii:tfn", "0491": "pii:phone", "Wattle": "pii:address"}
    add(t, [v for k, v in label.items() if k in t], direction="outbound", visibility="public")


# --- Checks added later (PI-12, PI-13, MOD-05, MOD-07, SLA-02, OUT-01); appended so earlier items keep their
# random identifiers.
for t in [
    "My case officer Sarah Jones refused my claim without reading it",
    "The lady at the counter, Priya, sorted it in five minutes. Thank you!",
    "Customer service officer Tom hung up on me twice",
    "Ask for assessor Daniel Nguyen, he knows my file",
]:
    add(t, ["pii:staff_name"])
for t in [
    "The officer Told me to wait for a letter",  # a capitalised verb, not a name
    "Your staff member at the front desk was rude",
    "The case manager on Monday said my payment is fine",
]:
    add(t)
image = [{"type": "image"}]
for t in [
    "Here's a photo of my Medicare card so you can fix the number",
    "Screenshot of the letter I got, why does it say I owe money?",
    "Payslip attached, is this enough to prove my income?",
]:
    add(t, ["pii:image"], media=image)
add("see attached", ["pii:image"], media=[{"type": "image", "alt_text": "photo of my drivers licence"}])
add("Here's my Medicare card number question: how long does a new card take?")  # no image attached
add("Photo of the flooded road near the bridge", media=image)
for t in [
    "When do I get my payment?? Third time asking",
    "Still waiting on a reply about my claim",
    "Answer the question: why was my payment cut",
]:
    add(t, ["flooding"], duplicate_of=True)
add("When do I get my payment?? Third time asking")  # the first of its kind is not flooding
for t in [
    "There's a suppression order on that case, your page should not name him",
    "My ex is before the court next month for what he did, can I get a crisis payment?",
    "The guy who robbed the office has been charged with assault, will you comment?",
]:
    add(t, ["legal"])
add("Court closures over the holidays: when does the local court reopen?")
for t in [
    "There's a defamatory comment about me on your page, please remove it",
    "The reply under your post calls me a thief. That is defamation and I want it taken down",
    "Your thread has libellous comments about my business, delete them",
]:
    add(t, ["defamation_complaint"])
add("What do the defamation law reforms mean for council pages?")
for t, dept, allowed in [
    ("Thanks, your licence renewal is now processed.", "transport", ["tax"]),
    ("The M4 reopens at 6pm tonight.", "transport", []),
    ("Lodgement closes on 31 October.", "tax", ["health"]),
]:
    add(
        t,
        ["authorisation"],
        direction="outbound",
        visibility="public",
        department=dept,
        authorised_departments=allowed,
    )
add(
    "The M4 reopens at 6pm tonight.",
    direction="outbound",
    visibility="public",
    department="transport",
    authorised_departments=["transport"],
)


def main() -> None:
    with OUT.open("w") as f:
        f.write(json.dumps({"measured_labels": MEASURED}) + "\n")
        for i, item in enumerate(items, 1):
            f.write(json.dumps({"id": f"c{i:03d}", **item}, ensure_ascii=False) + "\n")
    print(f"wrote {len(items)} items to {OUT}")


if __name__ == "__main__":
    main()
