"""The support-desk language the worked example's tickets are composed from, split into two pools.

Every family of phrasings below comes as ``{"train": (...), "test": (...)}``: tickets of the *train*
pool (fine-tuning train and eval rows, the monitor's in-domain traffic, the reference model's
pretraining corpus) are written only with train phrasings, names and products; tickets of the *test*
pool (the held-out test split and the eval suite's cases) only with test ones. So the held-out split
measures whether a model learned triage, not whether it recalls templates.

What the pools share is the domain's vocabulary, as a real desk's tickets do: the shared
:data:`DOMAIN_TERMS` ("a double charge on my card") that half the problems are said with, inside
pooled frames; the cue words of urgency ("urgent", "no rush", "my business depends on it") inside
pooled sentences; and the words that mark an aside ("Side note", "By the way") inside pooled frames.
A model can generalise from train phrasings to test ones only through that shared vocabulary, which is
what makes the split a test of reading, not of recall. Products come from a wide train list (30) and a
disjoint test list, so the model learns that a product's name says nothing about the intent.

Labels follow from the parts: a ticket's intent is its *primary* problem's family; its priority is the
family of its urgency sentence (said outright or implied by a consequence), ``medium`` when it says
nothing about urgency. A ticket that mentions a second problem brings it up after the first, as an
aside ("By the way, a separate question: ..."), and the urgency is always about the first.
"""

from __future__ import annotations

Pools = dict[str, tuple[str, ...]]

INTENTS: tuple[str, ...] = ("billing", "refund", "shipping", "account_access", "technical_issue", "cancellation")
PRIORITIES: tuple[str, ...] = ("low", "medium", "high", "urgent")
#: the team a routing note names for each intent (pretraining text says where tickets go)
TEAMS: dict[str, str] = {
    "billing": "billing",
    "refund": "refunds",
    "shipping": "delivery",
    "account_access": "account security",
    "technical_issue": "technical support",
    "cancellation": "subscriptions",
}

CUSTOMER_NAMES: Pools = {
    "train": (
        "Aisha", "Kwame", "Liam", "Omar", "Mei", "Sofia", "Diego", "Ingrid", "Mateo", "Olumide",
        "Priya", "Lars", "Fatima", "Hiroshi", "Zainab", "Dmitri", "Amara", "Yuki", "Carlos", "Nadia",
        "Arjun", "Emma", "Tariq", "Chloe", "Jamal", "Ana", "Wei", "Olga", "Kofi", "Isabella",
        "Rahul", "Leila", "Noah", "Siobhan", "Tomasz", "Ngozi", "Ethan", "Mariam", "Jin", "Lucia",
        "Freya", "Sipho", "Bruno", "Hana", "Farid", "Greta", "Kenji", "Rosa", "Samir", "Tove",
        "Adebayo", "Elif", "Pablo", "Ruth", "Viktor", "Yasmin", "Ravi", "Clara", "Musa", "Anya",
    ),
    "test": (
        "Thandiwe", "Bjorn", "Camila", "Dawit", "Esther", "Felipe", "Gulnara", "Hamza", "Ilse", "Joaquin",
        "Keiko", "Lorenzo", "Marisol", "Nikolai", "Oksana", "Patrice", "Quentin", "Rania", "Soren", "Teodora",
        "Umar", "Valentina", "Wanjiru", "Xavier", "Yara", "Zoltan", "Abena", "Benedikt", "Chidi", "Dalia",
        "Emeka", "Fiona", "Goran", "Halima", "Ivo", "Jasmin", "Kalani", "Luka", "Maren", "Nasser",
    ),
}  # fmt: skip
AGENT_NAMES: tuple[str, ...] = ("Sam", "Alex", "Robin", "Jordan", "Kim", "Taylor")
PRODUCTS: Pools = {
    "train": (
        "Nimbus speaker", "Orbit smartwatch", "Lumen desk lamp", "Pulse fitness band", "Vertex router",
        "Cobalt headphones", "Atlas backpack", "Zephyr fan", "Aurora blender", "Beacon doorbell",
        "Comet drone", "Delta scooter", "Echo microphone", "Falcon printer", "Glacier air purifier",
        "Helix power bank", "Iris projector", "Jade thermostat", "Kestrel monitor", "Lotus toaster",
        "Meridian coffee machine", "Nova charger", "Onyx game console", "Prism webcam", "Quartz vacuum",
        "Raven mouse", "Sierra heater", "Terra smart plug", "Umbra dashcam", "Vista baby monitor",
    ),
    "test": ("Quill tablet", "Harbor camera", "Ember kettle", "Drift e-reader", "Summit keyboard", "Tidal earbuds"),
}  # fmt: skip
PLANS: Pools = {"train": ("Basic", "Plus", "Premium"), "test": ("Family", "Pro", "Student")}

#: Problems said in the domain's shared words, one per noun phrase; both pools use them, in pooled frames.
DOMAIN_TERMS: dict[str, tuple[str, ...]] = {
    "billing": (
        "a double charge on my card", "the wrong amount on my invoice", "an extra fee on my bill",
        "a payment I never made", "the price I was charged for my {plan} plan", "a charge that appeared twice",
        "my monthly statement", "the VAT on my last invoice",
    ),
    "refund": (
        "the refund for my returned {product}", "my money back for order {order}", "a refund that never arrived",
        "the refund you promised me", "getting my money back for a faulty {product}", "a refund of ${amount}",
        "the return I sent back {days} days ago", "reimbursement for a broken {product}",
    ),
    "shipping": (
        "my parcel that has not arrived", "the delivery of order {order}", "a package marked delivered that I never got",
        "the tracking number for my {product}", "the courier who never came", "the shipping address on order {order}",
        "a delivery that is {days} days late", "my parcel stuck in the warehouse",
    ),
    "account_access": (
        "the two-factor code that never comes", "my password reset link", "my locked account",
        "signing in to my account", "the login page that rejects my password", "access to my {plan} account",
        "the verification email for my login", "my username and password",
    ),
    "technical_issue": (
        "the app crashing on my {product}", "error code {code} on my {product}", "my {product} freezing",
        "a blank screen in the dashboard", "the firmware update for my {product}", "my {product} not syncing",
        "the bug in the settings page", "my {product} rebooting on its own",
    ),
    "cancellation": (
        "cancelling my {plan} subscription", "ending my {plan} membership", "the cancellation of order {order}",
        "closing my account for good", "stopping my automatic renewal", "terminating my contract",
        "my request to cancel the {plan} plan", "not renewing my subscription",
    ),
}  # fmt: skip

#: Frames that turn a :data:`DOMAIN_TERMS` phrase into a sentence (``{term}``).
PROBLEM_FRAMES: Pools = {
    "train": (
        "I need help with {term}.", "I am writing about {term}.", "Can someone look at {term}?",
        "There is a problem with {term}.", "Please check {term}.", "My question is about {term}.",
        "I have an issue regarding {term}.", "Could you help me with {term}?",
        "I contacted you before about {term}.", "Something is wrong with {term}.",
        "I am having trouble with {term}.", "Can you explain {term}?", "I want to ask about {term}.",
        "This message is about {term}.", "I need support with {term}.", "Please look into {term}.",
        "I am still waiting on {term}.", "Nobody has answered me about {term}.", "I have a complaint about {term}.",
        "Can you fix {term}?",
    ),
    "test": (
        "Reaching out regarding {term}.", "Could you sort out {term}?", "I'd like to report {term}.",
        "Quick one about {term}.", "Need a hand with {term}.", "Getting in touch about {term}.",
        "Can you please deal with {term}?", "Trouble here with {term}.",
        "This concerns {term}.", "Help needed with {term}.",
    ),
}  # fmt: skip

#: Problems said in their own words, per intent and pool.
PROBLEM_SENTENCES: dict[str, Pools] = {
    "billing": {
        "train": (
            "I was charged twice for the {product} this month, two payments of ${amount}.",
            "My invoice for order {order} lists ${amount}, but the price on your site was lower.",
            "Why does my latest bill include a ${amount} fee I never agreed to?",
            "The invoice for the {product} has the wrong company address on it.",
            "I was charged ${amount} for the {plan} plan although I picked the free trial.",
            "My bank statement shows a payment to you that I do not recognise.",
            "The discount code was accepted but the full price was taken from my card.",
            "You billed me for the {plan} plan after I downgraded.",
            "My card was debited twice for one order.", "The receipt shows a tax amount that is wrong.",
            "I was billed ${amount} more than the price at checkout.", "There is a fee on my statement that nobody explained.",
            "There are two payments for the same order on my statement.", "The price on my invoice is higher than the offer.",
            "I need an invoice with my company name for order {order}.", "An unexpected fee of ${amount} was added to my bill.",
            "The tax on my receipt is calculated wrong.", "My card was charged before the order was confirmed.",
            "The monthly payment went up without any notice.", "Please send me a copy of the bill for last month.",
        ),
        "test": (
            "Two identical payments of ${amount} left my account for one order.",
            "The amount on the invoice does not match what checkout showed me.",
            "There is a mystery fee of ${amount} on this month's statement.",
            "My card was debited ${amount} for a {plan} plan I never chose.",
            "The receipt for order {order} adds tax twice.",
            "I keep being billed for a plan I switched off months ago.",
            "Your system took money from my card even though the payment failed on screen.",
            "My company needs a corrected invoice, the VAT number on it is wrong.",
        ),
    },
    "refund": {
        "train": (
            "I returned the {product} {days} days ago and I am still waiting for my refund of ${amount}.",
            "The {product} arrived broken. I would like my money back for order {order}.",
            "Can I get a refund for order {order}? The {product} does not work as described.",
            "You promised a refund of ${amount} for order {order} {days} days ago. Where is it?",
            "I sent the {product} back and the refund has still not reached my card.",
            "The refund I got was ${amount} short of what I paid.",
            "I want to return the {product} and be refunded, it is not what I expected.",
            "My refund was approved but the money never came.",
            "Please reimburse me for the {product}, it was faulty.", "I was promised my money back but only got part of it.",
            "The return was accepted, so please pay me back ${amount}.", "I would like a refund to my card for order {order}.",
            "I sent the {product} back a month ago and still have no refund.", "Please refund the ${amount} for the missing item.",
            "How long does a refund to my bank take?", "The {product} was faulty and I want my money back.",
            "I returned two items but was refunded for one.", "Where is the money for my return of order {order}?",
            "I was told I would be reimbursed within a week.", "Please pay me back for the damaged {product}.",
        ),
        "test": (
            "Your warehouse confirmed my return, so when will the ${amount} be paid back?",
            "The {product} stopped working on day two and I want a full refund.",
            "I was told the reimbursement would take five days; it has been {days}.",
            "Please pay back the ${amount} you still owe me for the returned item.",
            "I only got a partial refund for order {order}.",
            "The {product} came with a cracked case, I would like to be reimbursed.",
            "Still no sign of the money for the {product} I returned.",
            "The refund went to an old card I no longer have.",
        ),
    },
    "shipping": {
        "train": (
            "My package for order {order} has not arrived after {days} days and the tracking page has not changed.",
            "Tracking says my {product} was delivered, but there is nothing at my door.",
            "Can you change the delivery address for order {order}? I moved last week.",
            "Order {order} was supposed to ship {days} days ago and it still says processing.",
            "The courier left my {product} with a neighbour I do not know.",
            "My parcel has been stuck at the depot for {days} days.",
            "The parcel arrived but the {product} was missing from it.",
            "The tracking link for order {order} gives an invalid number.",
            "My shipment has been in transit for {days} days.", "The driver says he delivered the parcel but I got nothing.",
            "The courier keeps sending my package to my old address.", "The carrier sent my parcel back to your depot.",
            "The courier never showed up with my {product}.", "My package says delivered to a wrong address.",
            "I have waited {days} days for the parcel to ship.", "The tracking has not moved since the depot.",
            "Please deliver the {product} to my neighbour instead.", "The driver left my parcel in the rain.",
            "My delivery was split and one package is missing.", "The shipment went back to your warehouse by mistake.",
        ),
        "test": (
            "Where is my {product}? The delivery should have been here {days} days ago.",
            "The driver marked order {order} as handed over, but nobody rang the bell.",
            "I received somebody else's parcel instead of my {product}.",
            "The shipment has shown 'in transit' for over a week now.",
            "The courier took my order to my old address even though I updated it.",
            "Half of the shipment for order {order} came and the rest is nowhere to be seen.",
            "The carrier says the address is wrong and is sending the parcel back.",
            "Could the {product} be sent to my office instead of my flat?",
        ),
    },
    "account_access": {
        "train": (
            "I cannot log in to my account. It says my password is wrong, but I reset it {days} days ago.",
            "My account got locked out after too many attempts and I cannot get back in.",
            "I never receive the two-factor code when I try to sign in on my phone.",
            "I changed my email address and now I cannot sign in to manage my {plan} plan.",
            "The password reset link in your email has expired every time I click it.",
            "The app logs me out straight away after I enter my password.",
            "Someone changed my login details and I cannot access my account.",
            "I lost my phone and with it the authenticator for my account.",
            "My credentials are not accepted on the sign-in page.", "The verification email for my login never arrives.",
            "I think someone hacked my account and changed the password.", "The authenticator code is rejected when I log in.",
            "I cannot sign in since I changed my password.", "The login page says my account is locked.",
            "My two-factor codes arrive after they expire.", "I keep failing the verification step when I log in.",
            "My username is not recognised on the sign-in page.", "The password reset email never reaches me.",
            "I was logged out and cannot get in again.", "Someone else's email is on my login now.",
        ),
        "test": (
            "My credentials stopped working overnight.",
            "The sign-in page keeps saying my username does not exist.",
            "The verification text never turns up, so I am stuck at the login screen.",
            "After the update I am locked out of the {plan} account.",
            "Every time I try to get into my profile it asks me to verify again and then fails.",
            "I think my account was hacked, the email on it is not mine any more.",
            "I forgot which email I registered with and cannot get in.",
            "The authenticator app shows a code but the website rejects it.",
        ),
    },
    "technical_issue": {
        "train": (
            "The {product} app keeps crashing when I open the settings page.",
            "I get error code {code} every time I try to sync my {product}.",
            "Since the last update my {product} freezes after a few minutes of use.",
            "The dashboard only shows a blank screen on my laptop since yesterday.",
            "My {product} will not connect to the wifi any more.",
            "The {product} turns itself off after a few seconds.",
            "The app shows an error when I try to save my settings.",
            "The battery of my {product} drains in an hour since the update.",
            "The {product} firmware update stops halfway.", "Bluetooth keeps disconnecting on my {product}.",
            "The screen of my {product} goes dark at random.", "Since the update the {product} gets very hot.",
            "The {product} app freezes on the start screen.", "My {product} shows error {code} after the update.",
            "The wifi on my {product} keeps dropping.", "The {product} will not sync with my phone.",
            "The app crashes as soon as I open it.", "The {product} restarts every few minutes.",
            "The software hangs when I save a file.", "The screen stays blank after I turn on the {product}.",
        ),
        "test": (
            "The {product} is stuck on the start-up logo.",
            "Whenever I pair the {product} with my phone the app closes.",
            "The screen flickers and then the {product} goes dark.",
            "Your software throws {code} as soon as I press export.",
            "Bluetooth on the {product} drops every couple of minutes.",
            "The {product} overheats and restarts by itself.",
            "The web page hangs at loading and nothing responds.",
            "Updating the firmware on the {product} fails halfway.",
        ),
    },
    "cancellation": {
        "train": (
            "Please cancel my {plan} subscription before the next renewal.",
            "I want to cancel order {order}, I picked the wrong {product}.",
            "How do I end my {plan} membership? I no longer need it.",
            "Please stop my subscription to the {plan} plan, I am moving to another provider.",
            "I would like to close my account and end the membership.",
            "Please do not renew my {plan} plan this year.",
            "I ordered the {product} by mistake, please cancel the order.",
            "I want to end my contract with you at the end of this month.",
            "Please terminate my contract at the end of the month.", "I want to opt out of the automatic renewal.",
            "I want to unsubscribe and stop paying for the {plan} plan.", "Cancel order {order}, I do not need it any more.",
            "Please cancel my membership today.", "I want to end the {plan} subscription and not renew.",
            "How do I cancel the automatic renewal?", "I would like to terminate the {plan} contract.",
            "Please close my account, I am not using it.", "Cancel the order for the {product}, please.",
            "I no longer need the {plan} plan, please cancel it.", "I want to stop my subscription from next month.",
        ),
        "test": (
            "I'm done with the {plan} plan, please end the subscription.",
            "Kindly terminate my membership, I am leaving.",
            "I no longer want order {order}, so cancel that order.",
            "How can I opt out of the automatic renewal?",
            "Please remove my subscription, I have found a cheaper option.",
            "I would like to quit the service from next month.",
            "Scrap order {order} and cancel it, I bought the {product} elsewhere.",
            "Unsubscribe me from the {plan} plan and close the account.",
        ),
    },
}  # fmt: skip

#: Urgency said outright: cue clauses per priority, shared by both pools (the domain's words of urgency),
#: said inside a pool's :data:`URGENCY_FRAMES`.
URGENCY_CUES: dict[str, tuple[str, ...]] = {
    "low": (
        "there is no rush", "it can wait", "this is not urgent", "there is no hurry", "it is low priority",
        "whenever suits you is fine", "take your time", "it is not time-sensitive", "next week is fine",
        "it is a minor thing",
    ),
    "medium": (
        "a reply this week would be good", "please look at it in the next few days", "please reply when you can",
        "sometime this week is fine", "an answer within a few days would help",
    ),
    "high": (
        "please fix it as soon as possible", "I need this sorted soon", "this is getting really frustrating",
        "please make this a priority", "please deal with it quickly", "I have written about this before",
        "please hurry", "I need it sorted in the next day or so",
    ),
    "urgent": (
        "this is urgent", "it is an emergency", "I need help immediately", "this is critical",
        "it cannot wait another hour", "please act right now", "I need it fixed today", "this is extremely urgent",
    ),
}  # fmt: skip
#: Urgency implied by a consequence, never named: cue clauses per priority, shared by both pools.
CONSEQUENCE_CUES: dict[str, tuple[str, ...]] = {
    "low": (
        "it is only a small thing", "I am not using it at the moment", "it does not really affect me",
        "I just noticed it", "I am away for a month anyway",
    ),
    "high": (
        "I need it for a trip on Friday", "I have been waiting for over a week", "my family uses it every day",
        "I need it before the weekend", "this has dragged on for two weeks",
    ),
    "urgent": (
        "my shop cannot take any orders", "my business is losing money every hour", "my customers are waiting",
        "I have a deadline in two hours", "I cannot work at all today",
    ),
}  # fmt: skip
#: How a pool says an urgency cue (``{cue}``; the sentence's first letter is capitalised).
URGENCY_FRAMES: Pools = {
    "train": ("{cue}.", "{cue}, please.", "Please note: {cue}.", "Just so you know, {cue}.", "{cue}, thank you.",
              "Also, {cue}."),
    "test": ("Honestly, {cue}.", "{cue}!", "To be clear, {cue}.", "FYI {cue}.", "{cue}, thanks in advance.",
             "Bear in mind {cue}."),
}  # fmt: skip
#: How a pool says a consequence cue (``{cue}``).
CONSEQUENCE_FRAMES: Pools = {
    "train": ("{cue}.", "The problem is that {cue}.", "Because of this {cue}.", "Right now {cue}."),
    "test": ("The thing is, {cue}.", "Note that {cue}.", "Keep in mind that {cue}.", "As it stands, {cue}."),
}

GREETINGS: Pools = {
    "train": ("Hi!", "Hello!", "Hello there.", "Good morning.", "Dear support team,", "Hi team,"),
    "test": ("Hey!", "Good afternoon,", "Hiya.", "To whom it may concern,", "Greetings.", "Evening all,"),
}
#: How the writer introduces themself (``{name}``).
INTRODUCTIONS: Pools = {
    "train": ("This is {name}.", "My name is {name}.", "{name} here."),
    "test": ("It's {name} writing.", "{name} speaking.", "I am {name}, a customer of yours."),
}
SIGNOFFS: Pools = {
    "train": ("Thanks, {name}", "Best, {name}", "- {name}", "Regards, {name}", "Cheers, {name}"),
    "test": ("Many thanks, {name}", "Kind regards, {name}", "{name}", "Thank you, {name}", "All the best, {name}"),
}
#: Context that neither names a problem nor urgency, for longer tickets.
CONTEXT_SENTENCES: Pools = {
    "train": (
        "I have been a customer for three years.", "I ordered through the website.",
        "I already tried restarting everything.", "My order number is {order}.", "I use the {plan} plan.",
    ),
    "test": (
        "I bought it for my partner.", "I am writing from my work email.", "Your chat was closed, so I am emailing.",
        "I found your address on the help page.", "It is the first time this has happened.",
    ),
}  # fmt: skip
#: Words that mark a second, minor problem as an aside, shared by both pools (as urgency cues are): the
#: discourse words any writer uses, said inside a pool's :data:`SECONDARY_FRAMES`.
ASIDE_CUES: tuple[str, ...] = (
    "Side note", "By the way", "One more thing", "Unrelated", "Separately", "On another note",
)  # fmt: skip
#: How a pool says an aside (``{cue}`` from :data:`ASIDE_CUES`; ``{problem}``: a lower-cased sentence of another intent).
SECONDARY_FRAMES: Pools = {
    "train": ("{cue}, a separate question: {problem}", "{cue}, while I am here: {problem}"),
    "test": ("{cue}: {problem}", "{cue}, but while I have you: {problem}"),
}
