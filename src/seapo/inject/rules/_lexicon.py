"""Small built-in word lists for the rules injector (no model, no downloads). Invented names are
made by the grammars in ``_invent``, not drawn from lists here: a fixed list becomes a cue."""

from __future__ import annotations

# Country -> capital; both sides are swappable entities and feed the false-fact templates.
CAPITALS: dict[str, str] = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Portugal": "Lisbon",
    "United Kingdom": "London", "Ireland": "Dublin", "Netherlands": "Amsterdam", "Belgium": "Brussels",
    "Austria": "Vienna", "Switzerland": "Bern", "Poland": "Warsaw", "Sweden": "Stockholm",
    "Norway": "Oslo", "Denmark": "Copenhagen", "Finland": "Helsinki", "Greece": "Athens",
    "Russia": "Moscow", "Japan": "Tokyo", "China": "Beijing", "India": "New Delhi",
    "South Korea": "Seoul", "Thailand": "Bangkok", "Egypt": "Cairo", "Kenya": "Nairobi",
    "Nigeria": "Abuja", "Australia": "Canberra", "Canada": "Ottawa", "Brazil": "Brasilia",
    "Argentina": "Buenos Aires", "Mexico": "Mexico City", "Peru": "Lima", "Turkey": "Ankara",
    "Iran": "Tehran", "Vietnam": "Hanoi", "Indonesia": "Jakarta", "Hungary": "Budapest",
}
CITIES = ("Sydney", "Toronto", "Istanbul", "Shanghai", "Mumbai", "Barcelona", "Milan", "Munich",
          "Chicago", "Los Angeles", "New York", "San Francisco", "Boston", "Seattle", "Lyon",
          "Rio de Janeiro", "Sao Paulo", "Osaka", "Geneva", "Zurich", "Hamburg", "Manchester")
SCIENTISTS = ("Albert Einstein", "Isaac Newton", "Marie Curie", "Charles Darwin", "Galileo Galilei",
              "Nikola Tesla", "Niels Bohr", "Max Planck", "Louis Pasteur", "Gregor Mendel",
              "Michael Faraday", "James Clerk Maxwell", "Alan Turing", "Ada Lovelace",
              "Richard Feynman", "Erwin Schrodinger", "Werner Heisenberg", "Dmitri Mendeleev",
              "Johannes Kepler", "Nicolaus Copernicus", "Stephen Hawking", "Rosalind Franklin")
WRITERS = ("William Shakespeare", "Jane Austen", "Charles Dickens", "Mark Twain", "Leo Tolstoy",
           "Fyodor Dostoevsky", "Ernest Hemingway", "Virginia Woolf", "George Orwell", "Homer",
           "Victor Hugo", "Franz Kafka", "James Joyce", "Toni Morrison", "Gabriel Garcia Marquez")
# Element -> (symbol, atomic number).
ELEMENTS: dict[str, tuple[str, int]] = {
    "Hydrogen": ("H", 1), "Helium": ("He", 2), "Lithium": ("Li", 3), "Carbon": ("C", 6),
    "Nitrogen": ("N", 7), "Oxygen": ("O", 8), "Fluorine": ("F", 9), "Neon": ("Ne", 10),
    "Sodium": ("Na", 11), "Magnesium": ("Mg", 12), "Aluminum": ("Al", 13), "Silicon": ("Si", 14),
    "Phosphorus": ("P", 15), "Sulfur": ("S", 16), "Chlorine": ("Cl", 17), "Potassium": ("K", 19),
    "Calcium": ("Ca", 20), "Iron": ("Fe", 26), "Copper": ("Cu", 29), "Zinc": ("Zn", 30),
    "Silver": ("Ag", 47), "Tin": ("Sn", 50), "Gold": ("Au", 79), "Mercury": ("Hg", 80),
    "Lead": ("Pb", 82), "Uranium": ("U", 92),
}
PLANETS = ("Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune")
CONTINENTS = ("Africa", "Antarctica", "Asia", "Europe", "North America", "South America", "Oceania")
OCEANS = ("Atlantic Ocean", "Pacific Ocean", "Indian Ocean", "Arctic Ocean", "Southern Ocean")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
LANGUAGES = ("English", "French", "German", "Spanish", "Italian", "Portuguese", "Russian", "Chinese",
             "Japanese", "Arabic", "Hindi", "Korean", "Dutch", "Swedish", "Greek", "Turkish")
COMPANIES = ("Google", "Microsoft", "Apple", "Amazon", "IBM", "Intel", "Samsung", "Oracle", "Netflix",
             "Tesla", "Sony", "Nvidia", "Adobe", "Meta")
PROGRAMMING_LANGUAGES = ("Python", "JavaScript", "Java", "Ruby", "Rust", "Go", "Kotlin", "Swift",
                         "TypeScript", "Perl", "Haskell", "Scala", "PHP")

# Category -> names; a name is swapped for another of its own category. "May", "Mercury",
# "Go" etc. are ambiguous, so the ambiguous ones are left out of the swap lists below.
_AMBIGUOUS = {"May", "Mercury", "Go", "Lead", "Tin", "Iron", "Gold", "Silver", "Homer", "Turkey",
              "Swift", "Earth", "Apple", "Amazon", "Meta", "Oracle", "Rust", "Chinese"}
ENTITY_CATEGORIES: dict[str, tuple[str, ...]] = {
    "country": tuple(CAPITALS),
    "capital": tuple(CAPITALS.values()),
    "city": CITIES,
    "scientist": SCIENTISTS,
    "writer": WRITERS,
    "element": tuple(ELEMENTS),
    "planet": PLANETS,
    "continent": CONTINENTS,
    "ocean": OCEANS,
    "month": MONTHS,
    "weekday": WEEKDAYS,
    "language": LANGUAGES,
    "company": COMPANIES,
    "programming_language": PROGRAMMING_LANGUAGES,
}
ENTITY_TO_CATEGORY: dict[str, str] = {
    name: cat for cat, names in ENTITY_CATEGORIES.items() for name in names if name not in _AMBIGUOUS
}

# Unit -> a different unit of the same dimension (so the stated quantity becomes wrong).
_UNIT_PAIRS = [
    ("kilometers", "miles"), ("kilometres", "miles"), ("kilometer", "mile"), ("kilometre", "mile"),
    ("km", "mi"), ("kilograms", "pounds"), ("kilogram", "pound"), ("kg", "lb"), ("grams", "ounces"),
    ("gram", "ounce"), ("g", "oz"), ("milligrams", "grams"), ("mg", "g"), ("meters", "feet"),
    ("metres", "feet"), ("meter", "foot"), ("metre", "foot"), ("centimeters", "inches"),
    ("centimetres", "inches"), ("centimeter", "inch"), ("cm", "mm"), ("liters", "gallons"),
    ("litres", "gallons"), ("liter", "gallon"), ("litre", "gallon"), ("ml", "oz"),
    ("milliliters", "ounces"), ("hours", "minutes"), ("hour", "minute"), ("seconds", "milliseconds"),
    ("second", "millisecond"), ("days", "weeks"), ("day", "week"), ("months", "years"),
    ("month", "year"), ("dollars", "cents"), ("dollar", "cent"), ("mph", "km/h"), ("KB", "MB"),
    ("MB", "GB"), ("GB", "TB"), ("Celsius", "Fahrenheit"), ("°C", "°F"), ("watts", "kilowatts"),
    ("volts", "millivolts"), ("acres", "hectares"), ("tons", "kilograms"), ("yards", "meters"),
]
UNIT_SWAP: dict[str, str] = {}
for _a, _b in _UNIT_PAIRS:
    UNIT_SWAP.setdefault(_a, _b)
    UNIT_SWAP.setdefault(_b, _a)
# Units whose singular/plural mapping is handled above; "in", "m", "s" are too ambiguous to match.

# Word -> its opposite; used to negate a stated fact or reverse a conclusion.
OPPOSITES: dict[str, str] = {}
for _a, _b in [
    ("always", "never"), ("increase", "decrease"), ("increases", "decreases"),
    ("increased", "decreased"), ("more", "less"), ("larger", "smaller"), ("higher", "lower"),
    ("greater", "smaller"), ("before", "after"), ("true", "false"), ("possible", "impossible"),
    ("likely", "unlikely"), ("correct", "incorrect"), ("positive", "negative"), ("maximum", "minimum"),
    ("above", "below"), ("rises", "falls"), ("faster", "slower"), ("stronger", "weaker"),
    ("important", "unimportant"), ("safe", "unsafe"), ("valid", "invalid"), ("legal", "illegal"),
    ("best", "worst"), ("better", "worse"), ("easy", "difficult"), ("easier", "harder"),
    ("first", "last"), ("same", "different"), ("inside", "outside"), ("necessary", "unnecessary"),
    ("common", "rare"), ("efficient", "inefficient"), ("accurate", "inaccurate"),
    ("all", "none"), ("enough", "insufficient"), ("helpful", "unhelpful"),
]:
    OPPOSITES.setdefault(_a, _b)
    OPPOSITES.setdefault(_b, _a)

# Final answers that are labels, not numbers: answer -> a wrong one.
ANSWER_FLIP: dict[str, str] = {
    "yes": "no", "no": "yes", "true": "false", "false": "true", "positive": "negative",
    "negative": "positive", "neutral": "positive", "correct": "incorrect", "incorrect": "correct",
    "valid": "invalid", "invalid": "valid", "entailment": "contradiction",
    "contradiction": "entailment", "entails": "contradicts", "contradicts": "entails",
    "agree": "disagree", "disagree": "agree", "possible": "impossible", "impossible": "possible",
    "plausible": "implausible", "implausible": "plausible", "grammatical": "ungrammatical",
    "ungrammatical": "grammatical", "acceptable": "unacceptable", "unacceptable": "acceptable",
    "sarcastic": "sincere", "toxic": "harmless", "supported": "refuted", "refuted": "supported",
    "more": "less", "less": "more", "increase": "decrease", "decrease": "increase",
}

# Sentence starters that are safe to lower-case when a sentence is quoted inside another.
COMMON_STARTERS = frozenset(
    "the this that these those it a an there we you they he she in on for to if when so our my your "
    "his her its their some many most all each every one another such both since because after before "
    "as at by with from no not yes here now then first next finally also however while although "
    "overall thus therefore hence this what which who how".split()
)

# Capitalized words common across many texts (brands, tools, institutions' generic words, frequent
# first names, demonyms): an invented name put in their place removes a word a classifier sees in
# many positives, so invented names replace rarer ones. An exclusion list: nothing here is written.
COMMON_NAMES = frozenset(
    "America American Americans Europe European British English Chinese Indian African Asian Canadian "
    "Australian German French Spanish Italian Japanese Korean Russian Mexican Christian Christmas God Jesus "
    "Bible Earth Internet Google Microsoft Apple Amazon Facebook Twitter Instagram YouTube LinkedIn Android "
    "Windows Linux Excel Word Java JavaScript Python React Node Django Flask Apache Docker Kubernetes Azure "
    "Amazon Swift Kotlin Ruby Rails Unity Shopify WordPress Salesforce Adobe Photoshop Netflix Spotify Uber "
    "University College Institute School Academy National International Association Department Company "
    "Corporation Group Center Centre Council Committee Street County City State States Kingdom Republic "
    "North South East West New Saint King Queen Prince President Minister Doctor Professor Mr Mrs Ms Dr "
    "John Mary Michael David James Robert William Richard Thomas Mark Paul Peter George Mike Sarah Emily "
    "Emma Anna Lisa Jane Tom Jack Alex Sam Chris Ben Joe Dan Max Lily Sophia Olivia Jennifer Elizabeth".split())
