"""Value lists for the synthetic memory episodes (`episodes.py`).

Everything a fact can be about lives here: names of people and pets, places, jobs, foods, codes,
dates. The lists are long on purpose (hundreds of names and places) and mix single- and multi-token
values ("Mr. Whiskers", "Santa Fe", "AB-4471"), because a memory that only ever saw one-token values
learns to copy one token.

Train and test values are disjoint: `split_of(value)` puts every string in exactly one split by a
stable hash, the same for every list, so a name held out as a pet name is also never a person's name
in training. Generated values (codes, dates, companies) go through the same gate.
"""

from __future__ import annotations

import random
import zlib

TEST_SHARE = 4  # one value in TEST_SHARE goes to the held-out split


def split_of(value: str) -> str:
    """'train' or 'test' for a value string; stable across runs, platforms and lists."""
    return "test" if zlib.crc32(value.strip().lower().encode("utf-8")) % TEST_SHARE == 0 else "train"


def _words(block: str) -> list[str]:
    """One value per line or per comma; keeps multi-word values intact."""
    items = [item.strip() for line in block.strip().splitlines() for item in line.split(",")]
    return list(dict.fromkeys(item for item in items if item))


FIRST_NAMES = _words("""
Ana, Ben, Clara, Dmitri, Elena, Farid, Greta, Hiro, Ines, Jonas, Kemal, Lucia, Mateo, Nadia, Oskar,
Priya, Quentin, Rosa, Samir, Tilda, Umar, Vera, Wanjiru, Xavier, Yuki, Zofia, Aaron, Beatriz, Cyrus,
Daphne, Emeka, Fiona, Gustavo, Hannah, Ivan, Jasmine, Kofi, Leila, Marcus, Noor, Olga, Pablo, Ravi,
Sofia, Tomas, Uma, Viktor, Wendy, Yara, Zane, Adele, Bruno, Camille, Dario, Esther, Felix, Gloria,
Hugo, Irene, Jamal, Katya, Lorenzo, Maya, Nico, Ophelia, Pedro, Rania, Stefan, Talia, Ulrich,
Valentina, Wesley, Ximena, Yusuf, Zara, Abel, Bianca, Cedric, Delia, Elif, Fabian, Gemma, Hamid,
Isla, Joaquin, Kira, Lars, Mirela, Nathan, Odette, Paolo, Rebecca, Sven, Thea, Ugo, Vanessa, Walter,
Yasmin, Zeno, Amara, Basil, Celeste, Desmond, Eloise, Florian, Giulia, Henrik, Imogen, Jude, Kaito,
Lena, Milo, Nora, Otto, Pilar, Rafael, Selma, Teodor, Una, Vito, Wilma, Yannick, Zelda, Ayesha,
Bartek, Chiara, Diego, Edith, Franco, Hedda, Ismael, Johanna, Kasimir, Liesel, Mehmet, Nell,
Orlando, Paula, Rupert, Sanne, Tariq, Ursula, Vikram, Winona, Yvette, Zoltan, Agnes, Bastian,
Cora, Dominik, Esme, Fatima, Gideon, Harriet, Idris, Juno, Kaspar, Linnea, Malik, Nina, Octavia,
Piet, Rosalind, Soren, Tamsin, Ulla, Vivian, Wim, Ysolde, Zuzana, Anders, Bernadette, Caspar,
Dalia, Enzo, Freya, Gaspard, Hilde, Ilse, Jorge, Kalinda, Leopold, Magnus, Nadine, Oriana, Patrick,
Quinn, Renata, Silas, Tove, Ulises, Verena, Wolfgang, Yolanda, Zainab, Aurelio, Brigitte, Cosmo,
Dagny, Ezra, Flora, Gregor, Hollis, Iona, Jakub, Keanu, Lotte, Martina, Nils, Orla, Perpetua,
Raimund, Sabine, Thaddeus, Usha, Veronika, Willem, Xenia, Yoshi, Zenobia, Alvaro, Bettina, Corin,
Delphine, Emil, Frida, Giacomo, Heloise, Ignacio, Jolene, Konrad, Ludmila, Matthias, Nerea, Osman,
Petra, Rasmus, Saoirse, Tobias, Ulrike, Vasco, Wren, Yelena, Zorro, Alma, Boris, Carmen, Dev,
Eamon, Fern, Gaia, Horatio, Ivy, Jett, Kwame, Lavinia, Mads, Neve, Oona, Pascal, Roisin, Sunil,
Tessa, Ulf, Vida, Wade, Yael, Zed, Anouk, Bodhi, Cyra, Dante, Elio, Faye, Gwen, Hamza, Ines-Marie,
Jean-Luc, Mary Ann, Anne-Sophie, Luis Miguel, Kim, Lee, Sam, Max, Mo, Ada
""")

SURNAMES = _words("""
Souza, Kowalski, Nakamura, Okafor, Lindqvist, Moreau, Haddad, Petrov, Fischer, Oyelaran, Castillo,
Brennan, Ivanova, Schultz, Tanaka, Abara, Vasquez, Novak, Huber, Delacroix, Mbeki, Jansen, Rossi,
Eriksen, Dubois, Ferreira, Gallagher, Horvath, Iqbal, Jovanovic, Kaur, Larsen, Mendes, Nguyen,
O'Brien, Pereira, Quintero, Richter, Santos, Takahashi, Usman, Varga, Weber, Yilmaz, Zielinski,
Achebe, Bergstrom, Coleman, Da Silva, Van Dijk, El Amrani, MacLeod, St. Clair, De Luca, Kim, Lopez
""")

PET_NAMES = _words("""
Pickle, Biscuit, Mochi, Rex, Luna, Pepper, Noodle, Waffles, Ziggy, Clementine, Pumpkin, Tofu,
Nugget, Olive, Pixel, Muffin, Socks, Gizmo, Maple, Bean, Cinnamon, Domino, Echo, Fudge, Ginger,
Hazel, Jellybean, Kiwi, Lentil, Marble, Nacho, Oreo, Peanut, Quokka, Radish, Sprout, Truffle,
Udon, Velvet, Wasabi, Yoyo, Zucchini, Acorn, Bagel, Crumpet, Dumpling, Eclair, Fig, Gnocchi,
Hobbes, Inkblot, Juniper, Kibble, Lemon, Meatball, Nimbus, Onyx, Pretzel, Quincy, Rolo, Sushi,
Tater Tot, Ravioli, Sir Fluffington, Mr. Whiskers, Captain Fuzz, Lady Marmalade, Professor Paws,
Miss Muffet, Baron Von Wiggles, Sergeant Pepper, Duke, Princess Peach, Mister Bojangles, Little Bear,
Big Tony, Squeak, Chewbacca, Frodo, Gandalf, Yoda, Zelda Jr., Sprinkles, Bubbles, Scooter,
Shadow, Smokey, Storm, Thunder, Blizzard, Comet, Rocket, Nova, Stardust, Orbit, Cosmo Cat,
Paprika, Saffron, Nutmeg, Basilico, Cumin, Chai, Espresso, Latte, Cocoa, Caramel, Toffee, Mango,
Papaya, Coconut, Kumquat, Persimmon, Lychee, Guava, Tamarind, Pistachio, Cashew, Hazelnut,
Walnut, Chestnut, Pebble, Boulder, Flint, Slate, Granite, Quartz, Jasper, Opal, Topaz, Cobalt,
Indigo, Scarlet, Rusty, Dusty, Misty, Sandy, Sunny, Stormy, Breezy, Frosty, Sooty, Patches,
Freckles, Spot, Dotty, Ziggy Stardust, Bowie, Prince, Elvis, Dolly, Cher, Madonna, Bjork, Lizzo,
Houdini, Einstein, Tesla, Newton, Darwin, Galileo, Kepler, Copernicus, Ada Lovelace, Curie,
Hopper, Turing, Socrates, Plato, Homer, Virgil, Ovid, Cicero, Nero, Caesar, Cleo, Hercules,
Apollo, Athena, Zeus, Hera, Loki, Thor, Odin, Freyja, Sven Jr., Bilbo, Pippin, Merry, Samwise,
Gollum, Mittens, Boots, Whiskey, Brandy, Sherry, Porter, Stout, Lager, Cider, Mead, Bramble,
Thistle, Clover, Heather, Fern Gully, Moss, Willow, Aspen, Cedar, Birch, Rowan, Hawthorn, Elderberry,
Pudding, Custard, Trifle, Scone, Brioche, Croissant, Baguette, Pita, Naan, Tortilla, Churro
""")

CITIES = _words("""
Porto, Lisbon, Madrid, Seville, Valencia, Bilbao, Lyon, Marseille, Nantes, Bordeaux, Lille,
Strasbourg, Ghent, Antwerp, Utrecht, Rotterdam, Eindhoven, Groningen, Bremen, Leipzig, Dresden,
Hamburg, Cologne, Munich, Stuttgart, Freiburg, Zurich, Basel, Geneva, Lausanne, Innsbruck, Graz,
Salzburg, Vienna, Prague, Brno, Krakow, Gdansk, Wroclaw, Poznan, Vilnius, Riga, Tallinn, Helsinki,
Tampere, Turku, Oslo, Bergen, Trondheim, Stavanger, Gothenburg, Malmo, Uppsala, Aarhus, Odense,
Copenhagen, Reykjavik, Dublin, Cork, Galway, Belfast, Glasgow, Edinburgh, Aberdeen, Dundee, Leeds,
Sheffield, Bristol, Cardiff, Swansea, Brighton, Norwich, Oxford, Cambridge, York, Liverpool,
Manchester, Newcastle, Nottingham, Bologna, Florence, Verona, Turin, Genoa, Naples, Palermo,
Bari, Trieste, Ljubljana, Zagreb, Split, Sarajevo, Belgrade, Sofia, Plovdiv, Bucharest, Cluj,
Timisoara, Budapest, Debrecen, Athens, Thessaloniki, Izmir, Ankara, Istanbul, Tbilisi, Yerevan,
Baku, Almaty, Tashkent, Samarkand, Marrakesh, Fez, Casablanca, Tunis, Cairo, Alexandria, Nairobi,
Mombasa, Kampala, Kigali, Addis Ababa, Accra, Lagos, Dakar, Abidjan, Cape Town, Durban,
Johannesburg, Windhoek, Lusaka, Harare, Maputo, Zanzibar, Muscat, Doha, Amman, Beirut, Haifa,
Mumbai, Pune, Chennai, Kochi, Jaipur, Kolkata, Hyderabad, Bangalore, Colombo, Kathmandu, Dhaka,
Yangon, Chiang Mai, Bangkok, Hanoi, Da Nang, Ho Chi Minh City, Phnom Penh, Vientiane, Kuala Lumpur,
Penang, Singapore, Jakarta, Yogyakarta, Manila, Cebu, Taipei, Kaohsiung, Busan, Seoul, Daegu,
Osaka, Kyoto, Sapporo, Fukuoka, Nagoya, Sendai, Shanghai, Chengdu, Kunming, Xi'an, Harbin,
Ulaanbaatar, Perth, Adelaide, Brisbane, Hobart, Darwin, Melbourne, Auckland, Wellington,
Christchurch, Dunedin, Vancouver, Victoria, Calgary, Edmonton, Winnipeg, Toronto, Ottawa, Montreal,
Quebec City, Halifax, Seattle, Portland, Boise, Denver, Boulder, Santa Fe, Albuquerque, Tucson,
Phoenix, San Diego, Sacramento, Oakland, San Jose, Salt Lake City, Austin, El Paso, Houston,
New Orleans, Memphis, Nashville, Atlanta, Savannah, Charleston, Raleigh, Richmond, Baltimore,
Philadelphia, Pittsburgh, Cleveland, Detroit, Chicago, Milwaukee, Minneapolis, St. Louis,
Kansas City, Omaha, Buffalo, Boston, Providence, Burlington, Anchorage, Honolulu, Mexico City,
Oaxaca, Guadalajara, Monterrey, Merida, Havana, San Juan, Bogota, Medellin, Cartagena, Quito,
Cusco, Lima, Arequipa, La Paz, Santiago, Valparaiso, Mendoza, Cordoba, Buenos Aires, Montevideo,
Asuncion, Sao Paulo, Rio de Janeiro, Curitiba, Recife, Salvador, Fortaleza, Belo Horizonte, Manaus,
Las Palmas, Palma, Funchal, Ponta Delgada, Nice, Montpellier, Toulouse, Rennes, Dijon, Le Havre
""")

JOBS = _words("""
nurse, architect, carpenter, pharmacist, veterinarian, electrician, plumber, baker, librarian,
paramedic, firefighter, accountant, dentist, physiotherapist, translator, interpreter, chemist,
geologist, marine biologist, data analyst, software engineer, web developer, graphic designer,
sound engineer, film editor, photographer, journalist, copywriter, barista, sommelier, chef,
pastry chef, butcher, florist, tailor, jeweller, locksmith, welder, mechanic, pilot, flight attendant,
air traffic controller, bus driver, train conductor, ferry captain, lorry driver, courier, postman,
park ranger, gardener, landscape architect, beekeeper, dairy farmer, winemaker, brewer, fishmonger,
cheesemaker, potter, glassblower, blacksmith, bookbinder, piano tuner, violin teacher, music teacher,
primary school teacher, maths teacher, lecturer, research scientist, lab technician, radiographer,
midwife, surgeon, anaesthetist, optician, audiologist, speech therapist, occupational therapist,
psychologist, social worker, probation officer, police officer, paralegal, lawyer, judge, notary,
estate agent, mortgage adviser, insurance broker, actuary, economist, statistician, urban planner,
civil engineer, structural engineer, mechanical engineer, electrical engineer, surveyor, cartographer,
archivist, museum curator, art restorer, tour guide, travel agent, hotel receptionist, event planner,
wedding photographer, personal trainer, yoga instructor, swimming coach, football referee,
sports physio, nutritionist, hairdresser, barber, makeup artist, tattoo artist, illustrator,
animator, game designer, UX researcher, product manager, project manager, recruiter, HR manager,
office manager, bookkeeper, bank teller, cashier, shop manager, warehouse supervisor,
forklift driver, crane operator, roofer, tiler, bricklayer, stonemason, glazier, upholsterer,
dog groomer, zookeeper, lifeguard, ski instructor, mountain guide, sailing instructor, stage manager,
set designer, costume designer, puppeteer, court stenographer, customs officer, diplomat
""")

COMPANY_HEADS = _words("""
Bluefin, Northwind, Copperleaf, Harbor, Silverline, Redwood, Brightwater, Ironbark, Kestrel, Lumen,
Meridian, Nimbus, Oakridge, Pinecone, Quarry, Riverstone, Saltmarsh, Tidewater, Umber, Vantage,
Willowby, Yellowtail, Zephyr, Amberly, Birchwood, Cobalt, Driftwood, Evergreen, Foxglove, Granite,
Heron, Inkwell, Juniper, Kingfisher, Lighthouse, Mossbank, Nettle, Orchard, Puffin, Quill, Rookery,
Sparrow, Thistle, Upland, Vireo, Wavecrest, Yarrow, Alder, Bramble, Cinder
""")

COMPANY_TAILS = _words("""
Analytics, Logistics, Bakery, Robotics, Studios, Pharma, Foods, Labs, Consulting, Energy, Press,
Insurance, Dental, Architects, Software, Systems, Media, Brewing, Textiles, Motors, Health, Freight,
Games, Bank, Design
""")

EVENTS = {
    # slot -> (noun phrase as the user says it)
    "birthday": "birthday",
    "anniversary": "wedding anniversary",
    "dentist": "dentist appointment",
    "interview": "job interview",
    "driving test": "driving test",
    "move": "moving day",
    "exam": "final exam",
    "surgery": "knee surgery",
    "recital": "piano recital",
    "flight": "flight home",
}

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

FOODS = _words("""
lasagne, ramen, pad thai, paella, sushi, tacos al pastor, dumplings, pho, falafel, shakshuka,
moussaka, risotto, pierogi, goulash, biryani, dal makhani, bibimbap, jollof rice, injera,
ceviche, empanadas, feijoada, poutine, fish and chips, shepherd's pie, carbonara, gnocchi,
mac and cheese, banh mi, laksa, rendang, tagine, couscous, halloumi, spanakopita, borscht,
pelmeni, okonomiyaki, katsu curry, tom yum, massaman curry, arepas, pupusas, burritos, enchiladas,
pizza margherita, calzone, croque monsieur, ratatouille, bouillabaisse, fondue, raclette, schnitzel,
spaetzle, kimchi stew, mapo tofu, hot pot, peking duck, gyoza, udon, soba, tempura, onigiri
""")
COLOURS = _words("""
teal, mustard yellow, burgundy, forest green, navy blue, coral, lavender, olive green, crimson,
turquoise, ochre, lilac, maroon, sage green, charcoal grey, peach, mint green, cobalt blue,
terracotta, saffron, magenta, sky blue, emerald, amber, plum, rust orange, ivory, periwinkle
""")
DRINKS = _words("""
oat flat white, chai latte, matcha, earl grey, rooibos, espresso, hot chocolate, ginger beer,
kombucha, iced americano, cortado, mint tea, lemonade, sparkling water, yerba mate, horchata,
mango lassi, cold brew, apple cider, chamomile tea, jasmine tea, genmaicha, turmeric latte
""")
BANDS = _words("""
Radiohead, Fleetwood Mac, ABBA, The Beatles, Queen, Daft Punk, Portishead, Massive Attack,
Arcade Fire, Talking Heads, The Cure, Pink Floyd, Led Zeppelin, Nirvana, Beach House, Bon Iver,
Khruangbin, Tame Impala, Vampire Weekend, The National, Sigur Ros, Bjork, Kraftwerk, Pixies,
The Smiths, Blondie, Fugazi, Stereolab, Air, Phoenix, Gorillaz, Blur, Pulp, Oasis, Muse,
Fleet Foxes, Wilco, Buena Vista Social Club, Tinariwen, Fela Kuti, Nina Simone, Miles Davis
""")
BOOKS = _words("""
Middlemarch, Dune, Beloved, The Hobbit, Moby-Dick, Jane Eyre, Dracula, Frankenstein, Emma,
Rebecca, Ulysses, Persuasion, Stoner, Kindred, Neuromancer, Solaris, Dubliners, Siddhartha,
The Remains of the Day, One Hundred Years of Solitude, The Left Hand of Darkness, Never Let Me Go,
Wolf Hall, The Leopard, Pedro Paramo, Things Fall Apart, Anna Karenina, The Master and Margarita,
Invisible Cities, The Name of the Rose, Piranesi, Circe, Station Eleven, The Secret History
""")
FILMS = _words("""
Amelie, Casablanca, Spirited Away, Paddington 2, Alien, Arrival, Heat, Vertigo, Jaws, Amadeus,
Parasite, Moonlight, Fargo, Rushmore, Metropolis, Stalker, Ran, Chinatown, Tootsie, Labyrinth,
The Princess Bride, Back to the Future, Blade Runner, Groundhog Day, My Neighbor Totoro,
In the Mood for Love, The Grand Budapest Hotel, Singin' in the Rain, Mad Max: Fury Road, Inception
""")
DESSERTS = _words("""
tiramisu, baklava, pavlova, creme brulee, tarte tatin, cheesecake, apple crumble, sticky toffee pudding,
panna cotta, churros, mochi ice cream, pastel de nata, black forest cake, lemon drizzle cake,
carrot cake, key lime pie, eton mess, kulfi, halva, rice pudding, brownies, banoffee pie
""")
FLOWERS = _words("""
peonies, tulips, sunflowers, lilies, orchids, daffodils, lavender, hydrangeas, dahlias, ranunculus,
poppies, marigolds, camellias, freesias, anemones, irises, snapdragons, cornflowers, gardenias
""")
GAMES = _words("""
Catan, Ticket to Ride, Carcassonne, Scrabble, chess, backgammon, Azul, Wingspan, Codenames,
Pandemic, Dixit, mahjong, Go, Monopoly, Risk, Dominion, Splendor, Cluedo, Terraforming Mars
""")
SPORTS = _words("""
tennis, cricket, basketball, rugby, handball, volleyball, cycling, Formula One, ice hockey, snooker,
darts, baseball, badminton, table tennis, water polo, figure skating, athletics, sumo, curling
""")

PREFERENCES = {
    # slot -> (how the user names it, values)
    "food": ("favourite food", FOODS),
    "colour": ("favourite colour", COLOURS),
    "drink": ("usual coffee order", DRINKS),
    "band": ("favourite band", BANDS),
    "book": ("favourite book", BOOKS),
    "film": ("favourite film", FILMS),
    "dessert": ("favourite dessert", DESSERTS),
    "flower": ("favourite kind of flower", FLOWERS),
    "game": ("favourite board game", GAMES),
    "sport": ("favourite sport to watch", SPORTS),
}

CARS = _words("""
Honda Civic, Toyota Corolla, Volvo XC60, Skoda Octavia, Fiat Panda, Renault Clio, Peugeot 208,
Citroen Berlingo, Ford Fiesta, Ford Transit, VW Golf, VW Polo, Mini Cooper, Nissan Leaf, Kia Niro,
Hyundai Ioniq, Mazda MX-5, Subaru Outback, Tesla Model 3, Audi A4, BMW 3 Series, Seat Ibiza,
Dacia Duster, Opel Corsa, Toyota Prius, Suzuki Swift, Land Rover Defender, Jeep Wrangler,
Volvo 240, Saab 900, Citroen 2CV, VW camper van, Vespa, Honda Jazz, Fiat 500, Renault Zoe,
Mitsubishi Outlander, Toyota Hilux, Lada Niva, Alfa Romeo Giulia
""")

ALLERGENS = _words("""
peanuts, shellfish, penicillin, cats, pollen, dust mites, sesame, kiwi fruit, latex, wasp stings,
eggs, soy, mustard, celery, lupin, hazelnuts, strawberries, ibuprofen, horse hair, mould, avocado,
tree nuts, gluten, lactose, aspirin, bee stings, sulphites, coconut, buckwheat, mango skin
""")

HOBBIES = _words("""
pottery, bouldering, birdwatching, sourdough baking, woodworking, knitting, crochet, salsa dancing,
tango, fencing, archery, kayaking, trail running, open-water swimming, origami, calligraphy,
watercolour painting, astronomy, beekeeping, chess problems, fly fishing, orienteering, geocaching,
stand-up comedy, improv theatre, choir singing, ukulele, bass guitar, cello, jazz piano, drumming,
beatboxing, rollerblading, skateboarding, surfing, paragliding, scuba diving, sailing, rowing,
judo, aikido, capoeira, kickboxing, tai chi, yoga, pilates, embroidery, quilting, bookbinding,
leathercraft, stained glass, mosaic making, foraging, mushroom hunting, composting, bonsai,
terrarium building, model railways, lock picking, magic tricks, juggling, unicycling, kite flying,
home brewing, cheese making, fermentation, bread making, cake decorating, latte art, film photography,
bird photography, podcasting, ham radio, electronics tinkering, 3D printing, speedcubing
""")

LANGUAGES = _words("""
Portuguese, Japanese, Korean, Mandarin, Cantonese, Swahili, Icelandic, Finnish, Hungarian, Turkish,
Greek, Polish, Czech, Dutch, Swedish, Norwegian, Danish, Welsh, Irish, Scottish Gaelic, Basque,
Catalan, Italian, Romanian, Ukrainian, Georgian, Armenian, Farsi, Arabic, Hebrew, Hindi, Bengali,
Tamil, Urdu, Thai, Vietnamese, Indonesian, Tagalog, Yoruba, Amharic, Zulu, Esperanto,
Latin, Sign Language, Estonian, Latvian, Lithuanian, Slovenian, Croatian, Serbian, Bulgarian
""")

SUBJECTS = _words("""
marine biology, art history, mechanical engineering, linguistics, philosophy, economics, nursing,
architecture, veterinary medicine, data science, astrophysics, organic chemistry, social work,
anthropology, archaeology, musicology, film studies, geography, geology, oceanography, pharmacy,
law, criminology, journalism, graphic design, fashion design, urban planning, agriculture,
forestry, nutrition science, sports science, game design, classics, theology, statistics,
molecular biology, neuroscience, psychology, sociology, political science, international relations,
accounting, hospitality management, aerospace engineering, civil engineering, robotics
""")

TEAMS = _words("""
Ajax, Celtic, Benfica, Porto FC, Napoli, Boca Juniors, River Plate, Flamengo, Galatasaray,
Fenerbahce, Olympiacos, Red Star, Sparta Prague, Rapid Vienna, Hajduk Split, St. Pauli, Union Berlin,
Werder Bremen, Borussia Dortmund, Athletic Bilbao, Real Sociedad, Sevilla, Valencia CF, Lazio,
Torino, Fiorentina, Marseille FC, Lens, Anderlecht, Club Brugge, Feyenoord, PSV, Rosenborg,
Malmo FF, Brondby, Hibernian, Hearts, Aberdeen FC, Wrexham, Leeds United, Sheffield Wednesday,
Everton, Aston Villa, Nottingham Forest, the Chicago Cubs, the Boston Red Sox, the Green Bay Packers,
the Toronto Raptors, the Seattle Sounders, the Montreal Canadiens, the All Blacks, Munster Rugby
""")

PLACES = _words("""
Iceland, Patagonia, the Azores, Sicily, Crete, Madeira, the Faroe Islands, Lapland, Sardinia,
Corsica, the Scottish Highlands, the Lake District, Cornwall, Brittany, Provence, the Dolomites,
the Black Forest, Transylvania, Montenegro, Albania, Georgia, Jordan, Oman, Sri Lanka, Bhutan,
Laos, Borneo, Tasmania, Hokkaido, Okinawa, Jeju, Bali, Lombok, Zanzibar, Namibia, Madagascar,
Cape Verde, the Canary Islands, Morocco, Tunisia, Costa Rica, Belize, Yucatan, Peru, Bolivia,
the Galapagos, Tierra del Fuego, Nova Scotia, the Yukon, Alaska, Hawaii, Vermont, New Mexico,
Utah, Colorado, Quebec, Newfoundland, Greenland, Svalbard, the Lofoten Islands, Gotland, Estonia,
Slovenia, Tuscany, Umbria, Puglia, Andalusia, Galicia, Asturias, the Algarve, Porto Santo
""")

VENUES = {
    # slot -> noun phrase; the value is a generated name (`make_venue`)
    "restaurant": "favourite restaurant",
    "pub": "local pub",
    "cafe": "usual café",
    "gym": "gym",
    "school": "kids' school",
    "salon": "hairdresser's",
    "bakery": "favourite bakery",
    "bookshop": "favourite bookshop",
}
_VENUE_FIRST = _words("""
Crooked, Golden, Silver, Red, Blue, Green, Little, Old, Royal, Hidden, Lucky, Rusty, Velvet, Copper,
Salty, Sleepy, Dancing, Wandering, Humble, Jolly, Quiet, Happy, Lazy, Clever, Brave, Wild, Merry
""")
_VENUE_SECOND = _words("""
Anchor, Lantern, Fox, Heron, Kettle, Spoon, Teapot, Otter, Compass, Acorn, Badger, Barrel, Feather,
Lighthouse, Pigeon, Walrus, Mitten, Thimble, Pepper, Owl, Hare, Wren, Whisk, Ladle, Crown, Pebble
""")
_VENUE_STYLES = {
    "restaurant": ["The {a} {b}", "Casa {n}", "Chez {n}", "Trattoria {n}"],
    "pub": ["The {a} {b}", "The {b} and {c}"],
    "cafe": ["The {a} {b}", "Café {n}", "{n}'s Coffee"],
    "gym": ["{a} {b} Fitness", "{n}'s Gym", "Iron {b}"],
    "school": ["{n} Primary", "{a} {b} School", "St. {n}'s"],
    "salon": ["{n}'s Hair", "The {a} Comb", "Studio {n}"],
    "bakery": ["The {a} {b} Bakery", "{n}'s Bakes", "Boulangerie {n}"],
    "bookshop": ["The {a} {b} Bookshop", "{n}'s Books", "Pages of {n}"],
}

PET_KINDS = ["cat", "dog", "parrot", "rabbit", "hamster", "tortoise", "goldfish", "guinea pig",
             "horse", "ferret", "gecko", "budgie", "puppy", "kitten", "snake", "chicken"]

RELATIONS = ["sister", "brother", "boss", "landlord", "dentist", "best friend", "neighbour",
             "cousin", "mentor", "therapist", "personal trainer", "son", "daughter", "partner",
             "flatmate", "piano teacher", "GP", "accountant", "grandmother", "uncle", "aunt",
             "godson", "niece", "nephew", "manager", "babysitter", "mechanic", "lawyer"]

OTHER_PEOPLE = ["my colleague", "my neighbour", "my friend", "my cousin", "my boss", "my flatmate",
                "my brother-in-law", "a friend from work", "my old roommate", "my sister's friend",
                "the guy next door", "my yoga teacher", "my aunt", "my best mate"]

CODE_SLOTS = {
    # slot -> (noun phrase, value kind for `make_code`)
    "locker": ("gym locker code", "digits4"),
    "wifi": ("wifi password", "word_digits"),
    "gate": ("gate code", "digits4"),
    "bike": ("bike lock combination", "digits3"),
    "booking": ("booking reference", "alnum6"),
    "flight": ("flight number", "flight"),
    "plate": ("licence plate", "plate"),
    "parking": ("parking spot", "spot"),
    "apartment": ("apartment number", "flat"),
    "order": ("order number", "order"),
    "ticket": ("ticket number", "ticket"),
    "safe": ("hotel safe code", "digits4"),
}

_PASSWORD_WORDS = _words("""
otter, maple, falcon, comet, tulip, harbor, pepper, violet, cactus, walrus, mango, lantern, ember,
puffin, zephyr, nectar, cobalt, saffron, juniper, quartz, pickle, banjo, waffle, glacier, meadow
""")
_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"


def make_code(kind: str, rng: random.Random) -> str:
    """A fresh code-like value of the given kind (digits, plates, flight numbers …)."""
    if kind == "digits4":
        return f"{rng.randrange(1000, 10000)}"
    if kind == "digits3":
        return f"{rng.randrange(100, 1000)}"
    if kind == "word_digits":
        return f"{rng.choice(_PASSWORD_WORDS)}{rng.randrange(10, 100)}"
    if kind == "alnum6":
        return "".join(rng.choice(_LETTERS + "23456789") for _ in range(6))
    if kind == "flight":
        return f"{rng.choice(_LETTERS)}{rng.choice(_LETTERS)} {rng.randrange(100, 10000)}"
    if kind == "plate":
        return f"{rng.choice(_LETTERS)}{rng.choice(_LETTERS)}-{rng.randrange(1000, 10000)}"
    if kind == "spot":
        return f"{rng.choice('ABCDEFG')}{rng.randrange(1, 80)}"
    if kind == "flat":
        return f"{rng.randrange(1, 30)}{rng.choice('ABCDEF')}"
    if kind == "order":
        return f"#{rng.randrange(10000, 100000)}"
    if kind == "ticket":
        return f"{rng.choice(_LETTERS)}{rng.choice(_LETTERS)}{rng.randrange(100, 1000)}-{rng.randrange(10, 100)}"
    raise ValueError(f"unknown code kind {kind!r}; use one of the kinds in CODE_SLOTS")


def make_date(rng: random.Random) -> str:
    """A calendar date as people say it: 'March 14', 'the 3rd of June', 'Friday the 9th'."""
    month = rng.choice(MONTHS)
    day = rng.randrange(1, 29)
    style = rng.randrange(3)
    if style == 0:
        return f"{month} {day}"
    if style == 1:
        return f"the {_ordinal(day)} of {month}"
    return f"{rng.choice(WEEKDAYS)} the {_ordinal(day)}"


def make_venue(slot: str, rng: random.Random, split: str) -> str:
    """A made-up place name for a venue slot: 'The Crooked Anchor', 'Casa Ines', 'Iron Heron'
    (person names inside it come from the split's own names)."""
    style = rng.choice(_VENUE_STYLES[slot])
    return style.format(a=rng.choice(_VENUE_FIRST), b=rng.choice(_VENUE_SECOND), c=rng.choice(_VENUE_SECOND),
                        n=rng.choice(pool(FIRST_NAMES, split)))


def make_company(rng: random.Random, split: str) -> str:
    """'Bluefin Analytics': the distinctive first word comes from the split's own half."""
    return f"{rng.choice(pool(COMPANY_HEADS, split))} {rng.choice(COMPANY_TAILS)}"


def make_full_name(rng: random.Random, split: str) -> str:
    """'Ana Souza': first name and surname both from the split's own halves."""
    return f"{rng.choice(pool(FIRST_NAMES, split))} {rng.choice(pool(SURNAMES, split))}"


_ONSETS = ("b", "br", "d", "dr", "f", "g", "gr", "h", "k", "kl", "l", "m", "n", "p", "pr", "r", "s", "st",
           "t", "tr", "v", "w", "z", "sh", "th", "")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "io", "ou", "y")
_CODAS = ("", "", "", "n", "r", "l", "s", "th", "nd", "rk", "x", "m")
_PLACE_ENDINGS = ("", "", "", "by", "holm", "ville", "stad", "ford", "wick", " Bay", " Falls")


def make_invented(kind: str, rng: random.Random) -> str:
    """A made-up proper name that is in no list and usually not a single token of any tokenizer
    ('Drelmor', 'Vask Toriel', 'Brenholm'): values no memory can have seen in training, so it has to
    copy them. `kind` is 'name', 'place' or 'company'."""
    def word(syllables: int) -> str:
        text = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables))
        return text[:1].upper() + text[1:]
    if kind == "name":
        return word(rng.choice((2, 2, 3))) + (f" {word(2)}" if rng.random() < 0.2 else "")
    if kind == "place":
        return word(rng.choice((1, 2, 2))) + rng.choice(_PLACE_ENDINGS)
    if kind == "company":
        return f"{word(2)} {rng.choice(COMPANY_TAILS)}"
    raise ValueError(f"unknown invented kind {kind!r}; use 'name', 'place' or 'company'")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def pool(values: list[str], split: str) -> list[str]:
    """The values of one list that belong to `split` ('train' or 'test')."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    key = (id(values), len(values), split)
    if key not in _POOLS:
        _POOLS[key] = [v for v in values if split_of(v) == split]
        assert _POOLS[key], "every value list must have members in both splits"
    return _POOLS[key]


_POOLS: dict[tuple[int, int, str], list[str]] = {}  # the module's lists never change: cache the halves
