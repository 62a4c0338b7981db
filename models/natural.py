"""Hand-written natural multi-day conversations: the held-out set of the memory benchmark.

These were written by hand, one by one, to read like a real person chatting over a few days:
digressions, the odd typo, facts dropped in passing inside longer messages, corrections, and
questions asked indirectly ("remind me, what did I say my landlord's name was?"). None of their
phrasings come from the synthetic templates, and none of it is ever used for training: it only
measures whether recall carries over from the synthetic episodes to real chat.

Each conversation is a list of days (each day alternating user / assistant messages, user first;
the last day holds what is said before the questions, often nothing) and its probes
(question, answer, target reply, kind). Every probe is asked on the last day.
"""

from __future__ import annotations

from dreamchat.models.episodes import Episode, Probe

# (days, probes); probes are (question, answer, reply, kind); kind "combined" needs two facts,
# kind "update" asks for the newer of two values.
_Conversation = tuple[list[list[str]], list[tuple[str, str, str, str]]]

CONVERSATIONS: list[_Conversation] = [
    (
        [[
            "ugh, my landlord just texted that the boiler guy is coming at 8am tomorrow",
            "Early start! At least it'll get fixed.",
            "yeah. his name is Desmond Achterberg btw, he's actually nice, just bad at warning people",
            "That's something. Hope the repair goes quickly.",
        ], [
            "ok so the boiler works again",
            "Great news - warm showers are back.",
        ], []],
        [("remind me, what did I say my landlord's name was?", "Desmond Achterberg",
          "Your landlord is Desmond Achterberg.", "person_name")],
    ),
    (
        [[
            "We finally picked up the puppy today!!",
            "Congratulations! How's the first day going?",
            "chaos. she chewed a shoe within 10 minutes. the kids insisted on calling her Brisket",
            "Brisket is a great name for a shoe thief.",
            "haha right. also i need a recipe for something quick tonight, no energy to cook",
            "Try a one-pan pasta: pasta, cherry tomatoes, garlic and spinach, all cooked together.",
        ], []],
        [("what's the puppy's name again? my brain is mush", "Brisket", "Her name is Brisket.", "pet_name")],
    ),
    (
        [[
            "Can you help me write a short bio for a conference? I'm a hydrologist, I study groundwater in dry regions",
            "Sure: 'A hydrologist studying how groundwater behaves in arid regions, and how to keep it there.'",
            "nice, slightly too dramatic but ok",
            "Happy to tone it down if you like.",
        ], [
            "the conference is in Tromsø by the way, never been that far north",
            "You might catch the northern lights!",
        ], []],
        [("I'm filling in a form - what's my profession again?", "hydrologist", "You're a hydrologist.", "job"),
         ("Which city did I say the conference is in?", "Tromsø", "It's in Tromsø.", "plan")],
    ),
    (
        [[
            "so I moved house last weekend, my back is destroyed",
            "Moving is brutal. Take it easy this week.",
            "new place is in Hebden Bridge, tiny town, lots of hills",
            "Sounds pretty. Good walking country.",
        ], [
            "the wifi guy came. the password is a nightmare: plum-otter-1987",
            "Better keep that somewhere safe.",
            "that's why i'm telling you lol",
            "Fair enough, noted.",
        ], []],
        [("where did I move to?", "Hebden Bridge", "You moved to Hebden Bridge.", "city"),
         ("what was the wifi password at the new place", "plum-otter-1987",
          "The wifi password is plum-otter-1987.", "code")],
    ),
    (
        [[
            "My sister's getting married!! to a guy called Theo Barraclough",
            "That's wonderful news! Congratulations to them.",
            "i know!! wedding is on the 14th of September, in a barn apparently, cant wait",
            "A barn wedding in September sounds lovely.",
        ], []],
        [("who's my sister marrying?", "Theo Barraclough", "She's marrying Theo Barraclough.", "person_name"),
         ("when's the wedding?", "14th of September", "The wedding is on the 14th of September.", "date")],
    ),
    (
        [[
            "Morning. Doctor's appointment later, just a checkup",
            "Good luck - hope it's all routine.",
            "all fine! she said I should cut back on coffee though. Dr. Okonkwo-Hale is very blunt",
            "Blunt doctors are often the good ones.",
        ], [
            "I'm trying decaf. it's... fine",
            "It grows on you, supposedly.",
        ], []],
        [("what's my doctor called? I need to ring the surgery", "Okonkwo-Hale",
          "Your doctor is Dr. Okonkwo-Hale.", "person_name")],
    ),
    (
        [[
            "do you know anything about keeping chickens?",
            "A bit! They need a secure coop, fresh water and some space to scratch around.",
            "we have three now. Henrietta, Nugget... no wait, we ended up calling the brown one Chutney not Nugget",
            "Henrietta and Chutney, lovely. And the third?",
            "the third is Dame Judi. my partner's choice",
            "Excellent choice.",
        ], []],
        [("what did we end up calling the brown chicken?", "Chutney", "The brown one is Chutney.", "update"),
         ("which chicken did my partner name?", "Dame Judi", "Your partner named Dame Judi.", "pet_name")],
    ),
    (
        [[
            "I need to remember my locker number at the pool, it's 317, they don't give you a key tag",
            "Locker 317 - noted.",
            "thanks. the pool is freezing btw",
            "Brr. A hot chocolate after might help.",
        ], [
            "Went swimming again. Forgot the number obviously. Got lucky",
            "Next time I'll remind you!",
        ], []],
        [("back at the pool and of course I forgot - which locker was it?", "317", "Your locker is number 317.", "code")],
    ),
    (
        [[
            "my colleague Priyanka keeps stealing my stapler",
            "The eternal office crime.",
            "she's moving to Valletta next month anyway, got a job there",
            "A stapler-free future awaits you.",
        ], [
            "work was boring today",
            "Sorry to hear it. Anything fun planned for the evening?",
            "just TV",
            "Sounds relaxing.",
        ], []],
        [("where is the stapler thief moving to?", "Valletta", "She's moving to Valletta.", "combined"),
         ("the stapler thief at work, what was her name?", "Priyanka", "That's Priyanka.", "person_name")],
    ),
    (
        [[
            "anyway I'm going to Kyrgyzstan in May!! trekking",
            "That sounds incredible. Do you have a route yet?",
            "not yet. going with my friend Osvaldo who's done it before",
            "Good to have someone experienced along.",
        ], [
            "bought hiking boots. expensive",
            "Worth it for a trek like that.",
        ], []],
        [("where am I going trekking?", "Kyrgyzstan", "You're going trekking in Kyrgyzstan.", "plan"),
         ("who's coming with me on the trek?", "Osvaldo", "Your friend Osvaldo.", "person_name")],
    ),
    (
        [[
            "My car got towed. again.",
            "Oh no! Do you know where it was taken?",
            "yeah the pound on Ferrier Road. plate is KX-9082 in case they ask",
            "Hope they release it quickly.",
        ], []],
        [("the pound wants my registration, can you remind me?", "KX-9082", "Your plate is KX-9082.", "code"),
         ("which road is the car pound on?", "Ferrier Road", "It's on Ferrier Road.", "city")],
    ),
    (
        [[
            "my grandma turns 90 on March 3rd!! we're planning a surprise",
            "How lovely! What are you thinking of doing?",
            "a lunch at her favourite place, Casa Lindoro",
            "Perfect - familiar and special.",
        ], [
            "grandma suspects nothing so far",
            "Excellent undercover work.",
        ], []],
        [("when is grandma's birthday?", "March 3rd", "Her birthday is March 3rd.", "date"),
         ("what's the name of grandma's favourite restaurant?", "Casa Lindoro",
          "Her favourite place is Casa Lindoro.", "preference")],
    ),
    (
        [[
            "can u recommend a podcast",
            "If you like stories, 'This American Life' is a classic.",
            "i mostly listen while I run, training for a half marathon",
            "Nice! When's the race?",
            "october 19, in Bratislava",
            "Plenty of time to build up. Good luck!",
        ], []],
        [("when's my half marathon?", "october 19", "Your half marathon is on October 19.", "date"),
         ("which city is my race in?", "Bratislava", "It's in Bratislava.", "plan")],
    ),
    (
        [[
            "I've started volunteering at the animal shelter on saturdays",
            "That's a kind way to spend a weekend.",
            "there's this old greyhound there called Professor Noodle and I'm in love",
            "Sounds like a future adoption.",
        ], [
            "ok I did it. I adopted him",
            "Congratulations! He's lucky to have you.",
            "we kept the name obviously",
            "Of course - it's a great name.",
        ], []],
        [("what's the name of the dog I adopted?", "Professor Noodle", "Your dog is Professor Noodle.", "pet_name")],
    ),
    (
        [[
            "whats a good gift for a teacher",
            "A nice notebook, good pens, or a handwritten thank-you note go a long way.",
            "my son's teacher is Mrs. Abernethy-Cole, she's been amazing this year",
            "A note from your son would mean a lot to her.",
        ], []],
        [("writing the card now - how do I address my son's teacher?", "Abernethy-Cole", "She's Mrs. Abernethy-Cole.", "person_name")],
    ),
    (
        [[
            "my partner Jurgen is learning to make pasta from scratch. the kitchen is covered in flour",
            "Homemade pasta is worth the mess!",
            "he's an orthodontist, so he's weirdly precise about the thickness",
            "Precision suits pasta-making.",
        ], [
            "the ravioli were amazing actually",
            "Great to hear the flour paid off.",
        ], []],
        [("what does my partner do for a living?", "orthodontist", "Your partner is an orthodontist.", "combined"),
         ("and my partner, the pasta guy, you remember his name?", "Jurgen", "Your partner is Jurgen.", "person_name")],
    ),
    (
        [[
            "I need help remembering the gate code for my mum's building, its 4619 then the bell symbol",
            "4619 and then the bell. Got it.",
            "she lives in Bodø now, moved up there to be near my uncle",
            "A big move! Hope she's settling in.",
        ], []],
        [("what's the code for mum's building?", "4619", "It's 4619, then the bell symbol.", "code"),
         ("where does my mum live now?", "Bodø", "Your mum lives in Bodø.", "city")],
    ),
    (
        [[
            "i'm so bad with names. met my new neighbour today, she's called Ingeborg",
            "Ingeborg - a memorable name!",
            "she has a parrot that says 'hello darling', its name is Captain Biscotti",
            "That's delightful.",
        ], [
            "the parrot woke me up at 6. hello darling indeed",
            "A very polite alarm clock.",
        ], []],
        [("the lady next door, what was she called?", "Ingeborg", "Your neighbour is Ingeborg.", "person_name"),
         ("what's the name of the neighbour's parrot?", "Captain Biscotti", "The parrot is Captain Biscotti.",
          "combined")],
    ),
    (
        [[
            "So I got the job!!!",
            "Congratulations! Tell me more.",
            "junior wine steward at a wine bar called Vinoteca Ruscello. start on monday",
            "What a fun role. Good luck on Monday!",
        ], [
            "first day done. my feet hurt",
            "Standing all day takes getting used to.",
        ], []],
        [("where did I get my new job?", "Vinoteca Ruscello", "At Vinoteca Ruscello.", "workplace"),
         ("how should I describe my new role on linkedin?", "wine steward", "You're a junior wine steward.", "job")],
    ),
    (
        [[
            "favourite ice cream flavour debate at work today. I said pistachio-cardamom obviously",
            "A sophisticated pick!",
            "everyone else said chocolate. boring",
            "Chocolate is a safe choice, but yours has character.",
        ], []],
        [("the ice cream debate - which flavour was I defending?", "pistachio-cardamom",
          "You said pistachio-cardamom.", "preference")],
    ),
    (
        [[
            "booking a flight home for christmas. flight's LX 2280 on the 21st",
            "Noted. Do you need help with anything for the trip?",
            "nope just tell me the flight number when I inevitably forget",
            "Will do.",
        ], [
            "airline changed my flight :( it's now LX 2294, same day",
            "Annoying, but at least it's the same day.",
        ], []],
        [("the christmas flight got changed, which number is it now?", "LX 2294", "Your flight is LX 2294.", "update")],
    ),
    (
        [[
            "thinking of learning an instrument. my friend Baptiste plays the hurdy-gurdy, its so weird and cool",
            "The hurdy-gurdy is a fascinating instrument!",
            "he lives in Clermont-Ferrand and plays in a folk band",
            "Sounds like a lively scene.",
        ], []],
        [("what instrument does Baptiste play?", "hurdy-gurdy", "He plays the hurdy-gurdy.", "hobby"),
         ("where does my friend who plays the weird instrument live?", "Clermont-Ferrand",
          "He lives in Clermont-Ferrand.", "combined")],
    ),
    (
        [[
            "I'm allergic to kiwis, found out at a buffet in the worst way",
            "That sounds scary. Glad you're okay.",
            "my throat went all itchy. anyway",
            "Good to know - I'll keep that in mind for any recipes.",
        ], [
            "Can you suggest a fruit salad?",
            "Strawberries, mango, blueberries and orange with a squeeze of lime.",
        ], []],
        [("what fruit am I allergic to?", "kiwi", "You're allergic to kiwis.", "allergy")],
    ),
    (
        [[
            "my daughter wants a hamster. we went to look and she picked one and called it Lord Fuzzleton",
            "Lord Fuzzleton! Very dignified.",
            "hes tiny and absolutely not dignified",
            "The best kind of lord.",
        ], [
            "update: Lord Fuzzleton has been demoted. she renamed him Beans",
            "Beans it is, then.",
        ], []],
        [("what's the hamster called now?", "Beans", "The hamster is called Beans now.", "update")],
    ),
    (
        [[
            "ugh, the accountant wants all my receipts by friday",
            "Tax season energy. Need help organising them?",
            "no its fine. her name is Marguerite Solberg, super efficient, slightly terrifying",
            "The best accountants usually are.",
        ], []],
        [("who's my accountant?", "Marguerite Solberg", "Your accountant is Marguerite Solberg.", "person_name")],
    ),
    (
        [[
            "do you think it's weird to name a boat",
            "Not at all - naming boats is a long tradition.",
            "we bought a little sailboat, my wife named it The Salty Pretzel",
            "That's a fantastic boat name.",
            "it's moored in Kinsale, that's where her family is from",
            "A beautiful spot for sailing.",
        ], []],
        [("what's the name of our boat?", "The Salty Pretzel", "Your boat is The Salty Pretzel.", "pet_name"),
         ("where's the boat kept?", "Kinsale", "It's moored in Kinsale.", "city")],
    ),
    (
        [[
            "I teach primary school btw, year 4, they're feral today",
            "Year 4 can be a lot! Full moon?",
            "lol maybe. the school is Bramblewick Primary, tiny village school",
            "Small schools can be lovely.",
        ], [
            "kids were angels today. suspicious",
            "Enjoy it while it lasts!",
        ], []],
        [("which school do I work at?", "Bramblewick Primary", "You work at Bramblewick Primary.", "workplace"),
         ("what year group do I teach?", "year 4", "You teach year 4.", "job")],
    ),
    (
        [[
            "new year's resolution: read 30 books. currently on book 1 lol",
            "A great goal! What's the first one?",
            "The Wind-Up Bird Chronicle, my cousin Zdenek lent it to me",
            "Good start - it's a memorable read.",
        ], []],
        [("which book am I reading?", "Wind-Up Bird Chronicle", "You're reading The Wind-Up Bird Chronicle.",
          "preference"),
         ("who lent me the book?", "Zdenek", "Your cousin Zdenek.", "person_name")],
    ),
    (
        [[
            "what's the best way to get rid of fruit flies",
            "A little jar of apple cider vinegar with a drop of dish soap works well.",
            "ty. also unrelated but my band is playing a gig on friday! we're called Velvet Tractor",
            "Great name! Where's the gig?",
            "a pub called the Crooked Anchor",
            "Break a leg!",
        ], []],
        [("someone asked the name of my band and I blanked lol, help", "Velvet Tractor", "Your band is Velvet Tractor.", "preference"),
         ("which pub is the gig at?", "Crooked Anchor", "At the Crooked Anchor.", "plan")],
    ),
    (
        [[
            "my bestie Rosalía is coming to visit from Guanajuato next week",
            "How exciting! How long is she staying?",
            "a whole week!! need to plan stuff to do",
            "Maybe a mix of your favourite spots and a day trip?",
        ], [
            "planned a day trip to the coast",
            "Sounds perfect.",
        ], []],
        [("where is my best friend visiting from?", "Guanajuato", "She's coming from Guanajuato.", "combined"),
         ("my friend who's visiting - remind me of her name for the restaurant booking", "Rosalía", "Your best friend is Rosalía.", "person_name")],
    ),
    (
        [[
            "the bike shop said my bike will be ready thursday. ticket number 88-D-41",
            "Ticket 88-D-41 for Thursday, noted.",
        ], [
            "rain all day, glad I didn't have the bike anyway",
            "Good timing then.",
        ], []],
        [("what's the ticket number for my bike repair?", "88-D-41", "Your ticket is 88-D-41.", "code"),
         ("which day is my bike ready?", "thursday", "It'll be ready on Thursday.", "date")],
    ),
    (
        [[
            "i've decided to go vegetarian, starting today",
            "That's a big change! Do you want some easy recipes?",
            "yes pls. the only thing i'll miss is my dad's lamb stew honestly",
            "Maybe a lentil version could get close.",
        ], [
            "day 2 of veggie life. going ok",
            "Nice! How are you finding it?",
            "fine, ate a lot of halloumi",
            "Halloumi is a vegetarian's best friend.",
        ], []],
        [("which dish did I say I'll miss?", "lamb stew", "Your dad's lamb stew.", "preference")],
    ),
    (
        [[
            "my therapist suggested journaling. I feel silly but ok",
            "It can feel odd at first, but many people find it helps.",
            "her name is Dr. Halvorsen, she's really good",
            "Glad you found someone good.",
        ], [
            "journal entry 1 done. it was 3 lines",
            "Three lines is a start!",
        ], []],
        [("i need to cancel with my therapist, what's her surname again", "Halvorsen", "Your therapist is Dr. Halvorsen.", "person_name")],
    ),
    (
        [[
            "I work from home mostly but go into the office in Eindhoven on tuesdays",
            "A nice balance.",
            "the commute is an hour though. I drive an ancient Lancia Ypsilon that might die any day",
            "Fingers crossed it holds on.",
        ], []],
        [("what car do I have?", "Lancia Ypsilon", "You drive a Lancia Ypsilon.", "vehicle"),
         ("what day do I go into the office?", "tuesday", "On Tuesdays.", "date")],
    ),
    (
        [[
            "my brother just opened a bakery!!",
            "That's huge! What's it called?",
            "Crumb & Sons. even though he has no sons. he has a cat",
            "The cat can be an honorary son.",
            "lol the cat is called Mr. Pumpernickel",
            "Perfect bakery cat name.",
        ], []],
        [("what did my brother call his bakery?", "Crumb & Sons", "It's called Crumb & Sons.", "workplace"),
         ("what is my brother's cat called?", "Mr. Pumpernickel", "His cat is Mr. Pumpernickel.", "combined")],
    ),
    (
        [[
            "tell me something interesting about octopuses",
            "They have three hearts and can taste with their arms.",
            "cool. my kid's class is going to the aquarium in Lisbon on the 9th of may",
            "What a great trip for them.",
        ], [
            "had to sign the permission slip. bureaucracy for 9 year olds",
            "Ha, it starts early.",
        ], []],
        [("when is the aquarium trip?", "9th of may", "The trip is on the 9th of May.", "date")],
    ),
    (
        [[
            "i finally have a favourite tea. lapsang souchong. smells like a campfire",
            "It's a distinctive one! Smoky and bold.",
        ], [
            "actually i take it back. the campfire thing got old. genmaicha is my fav now",
            "Genmaicha is lovely - toasty and light.",
        ], []],
        [("which tea am I into these days?", "genmaicha", "Your favourite is genmaicha now.", "update")],
    ),
    (
        [[
            "My aunt Philippa is turning my old bedroom into a pottery studio lol",
            "A creative upgrade!",
            "she's a retired judge, pottery is her new obsession",
            "Quite the career change.",
        ], []],
        [("what did my aunt do before she retired?", "judge", "She was a judge.", "combined"),
         ("the aunt with the pottery studio, what's she called?", "Philippa", "Your aunt is Philippa.", "person_name")],
    ),
    (
        [[
            "does the order of cereal then milk matter",
            "Cereal first is the common choice - it keeps it crunchy.",
            "ok good. also my phone PIN changed because work made me, it's 507733 now, I'll forget",
            "507733 - noted.",
        ], [
            "yeah i forgot already. well not yet",
            "I'm here if you need it.",
        ], []],
        [("work made me change my phone PIN, what did it become?", "507733", "Your PIN is 507733.", "code")],
    ),
    (
        [[
            "We're thinking about names for the baby. leaning Aurelia if it's a girl",
            "Aurelia is beautiful.",
            "and Casimir if it's a boy. my husband isn't convinced",
            "Casimir is distinctive. Any backups?",
        ], [
            "it's a boy!! and husband came round, it's Casimir",
            "Congratulations!",
        ], []],
        [("what are we naming the baby?", "Casimir", "You're naming him Casimir.", "update")],
    ),
    (
        [[
            "started a new job at the planetarium!",
            "How fun! What will you be doing?",
            "running the shows. projectionist basically. the place is called Stellarium Oost",
            "Sounds dreamy.",
        ], []],
        [("what's the planetarium I work at called?", "Stellarium Oost", "It's Stellarium Oost.", "workplace"),
         ("what do I do there?", "projectionist", "You're a projectionist running the shows.", "job")],
    ),
    (
        [[
            "I'm hosting book club on thursday, we're doing Pachinko",
            "Great pick. Need snack ideas?",
            "yes. also Gwendolyn is bringing her famous lemon bars",
            "Then you've got dessert covered.",
        ], [
            "bought crisps and hummus. done",
            "Classic.",
        ], []],
        [("which book is book club reading?", "Pachinko", "You're reading Pachinko.", "plan"),
         ("who's bringing the lemon bars?", "Gwendolyn", "Gwendolyn is.", "person_name")],
    ),
    (
        [[
            "climbing gym today, finally sent a V4",
            "Congrats! That's a milestone.",
            "my climbing partner Ikaika spotted me, he's a coastguard so I felt safe lol",
            "Good person to have around.",
        ], [
            "fingers are wrecked",
            "Rest day time!",
        ], []],
        [("remind me what my climbing buddy does for work", "coastguard", "He's a coastguard.", "combined"),
         ("who's my climbing partner?", "Ikaika", "Ikaika.", "person_name")],
    ),
    (
        [[
            "Holiday plans: we're renting a cabin near Rovaniemi for new year",
            "That sounds magical.",
            "booking ref is QZ7HN4, can you hold onto that",
            "QZ7HN4 - holding on to it.",
        ], []],
        [("what's the booking reference for the cabin?", "QZ7HN4", "It's QZ7HN4.", "code"),
         ("where's the cabin?", "Rovaniemi", "Near Rovaniemi.", "plan")],
    ),
    # The last twenty were written in the fourteenth session, after the copy read's scale had been
    # looked at on the 44 above and before any of them was run: the check in the model card's v12
    # section. Evaluations before then use the first 44 (`--natural 44`).
    (
        [[
            "just got back from the vet, the cat is fine, just a bit overweight apparently",
            "Glad it's nothing serious! Time for a diet?",
            "lol yes. the vet was lovely, Dr Marisol Quintanilla, I'll probably see her again in march",
            "Sounds like the cat is in good hands.",
        ], [
            "the diet is going terribly, he screams at 5am",
            "Cats are persuasive. Stay strong!",
        ], []],
        [("the vet from the other week, can you remind me of her name?", "Quintanilla", "Dr Marisol Quintanilla.", "person_name")],
    ),
    (
        [[
            "ok I need to vent. the train was cancelled AGAIN",
            "That's frustrating. Did you make it in eventually?",
            "yes but I'm seriously thinking of cycling. I bought a bike on impulse, a green Brompton",
            "A folding bike is handy for mixed commutes.",
            "I named it Pipsqueak because it's green and small",
            "Pipsqueak is a great name for it.",
        ], [
            "first ride in, 40 minutes, legs dead",
            "Well done! It gets easier.",
        ], []],
        [("what did I call my bike?", "Pipsqueak", "You called it Pipsqueak.", "pet_name"),
         ("what kind of bike did I buy?", "Brompton", "A green Brompton.", "vehicle")],
    ),
    (
        [[
            "my sister is getting married!!",
            "Congratulations to her! When is the wedding?",
            "the 14th of june, in a barn somewhere in Dorset. I'm maid of honour, terrified",
            "You'll be great. Start the speech early!",
        ], [
            "started the speech. it's bad",
            "First drafts always are. Keep going.",
        ], []],
        [("I need a hotel for my sister's wedding, what date is it again?", "14th of june", "On the 14th of June.", "date"),
         ("what county is the wedding in?", "Dorset", "In Dorset.", "city")],
    ),
    (
        [[
            "work update: they moved me to the payments team",
            "A new team! How do you feel about it?",
            "fine I think. my new manager is called Tobiah, seems chill",
            "A chill manager helps a lot.",
        ], [
            "correction on yesterday - Tobiah left already?? my manager is now someone called Renske",
            "That was fast. Hopefully Renske is just as easy to work with.",
        ], []],
        [("who's my manager now?", "Renske", "Your manager is Renske.", "update"),
         ("which team did they move me to?", "payments", "The payments team.", "workplace")],
    ),
    (
        [[
            "can you remember something for me? the gate code for the allotment is 2581",
            "Got it: 2581 for the allotment gate.",
            "thanks. growing mostly courgettes this year, way too many as usual",
            "Courgettes do tend to take over.",
        ], [
            "gave away 11 courgettes today",
            "Your neighbours must love you.",
        ], []],
        [("what's the code for the allotment gate?", "2581", "It's 2581.", "code")],
    ),
    (
        [[
            "I'm learning to play the bassoon, day 3",
            "How exciting! How is it going?",
            "badly but happily. my teacher is an old guy called Ferenc who shouts 'bow arm!!' at me",
            "Ha, at least the feedback is clear.",
        ], [
            "practised for an hour, my neighbour knocked on the wall",
            "Maybe a practice mute would help.",
        ], []],
        [("what instrument am I learning?", "bassoon", "The bassoon.", "hobby"),
         ("who's my music teacher?", "Ferenc", "Your teacher is Ferenc.", "person_name")],
    ),
    (
        [[
            "bit of a weird one but I found out I'm allergic to kiwi. mouth went all itchy",
            "That sounds unpleasant. Did it settle down?",
            "yeah after an antihistamine. anyway, note to self: no kiwi",
            "Noted - no kiwi.",
        ], [
            "smoothie place nearly got me, there was kiwi in the 'green machine'",
            "Good catch. Always worth checking the ingredients.",
        ], []],
        [("which fruit am I allergic to?", "kiwi", "You're allergic to kiwi.", "allergy")],
    ),
    (
        [[
            "we're thinking about where to go this summer",
            "Any ideas so far?",
            "my partner wants Lisbon, I want somewhere quieter. we settled on the Azores in the end",
            "The Azores are beautiful and calm.",
            "flights are booked for july 22",
            "Something to look forward to!",
        ], [
            "bought hiking boots for the trip",
            "Good idea for the Azores.",
        ], []],
        [("where are we going this summer?", "Azores", "To the Azores.", "plan"),
         ("what date do we fly?", "july 22", "On July 22.", "date")],
    ),
    (
        [[
            "hey, quick one. my kid's school is called St Aldhelm's, I keep having to type it into forms",
            "That's a distinctive name. Anything I can help with?",
            "nope just moaning about forms",
            "Forms are endless, fair enough.",
        ], [
            "another form today. a different one.",
            "Of course there was.",
        ], []],
        [("ugh another form. the name of my kid's school?", "St Aldhelm's", "It's St Aldhelm's.", "workplace")],
    ),
    (
        [[
            "Dinner party saturday, I'm cooking for 6",
            "What's on the menu?",
            "a mushroom wellington. my friend Cosima is vegan so I'm making everything plant based",
            "A wellington is a great centrepiece.",
        ], [
            "the wellington collapsed but tasted great",
            "That's what matters!",
        ], []],
        [("which friend of mine is vegan?", "Cosima", "Cosima is vegan.", "person_name"),
         ("what did I cook for the dinner party?", "mushroom wellington", "A mushroom wellington.", "preference")],
    ),
    (
        [[
            "I've decided to finally learn a language properly",
            "Which one are you going for?",
            "Faroese. my grandad grew up in Torshavn and I want to read his old letters",
            "What a lovely reason to learn it.",
        ], [
            "I can say 'the weather is bad' now. very useful up there apparently",
            "That's real progress.",
        ], []],
        [("which language am I learning?", "Faroese", "You're learning Faroese.", "language")],
    ),
    (
        [[
            "the car failed its MOT",
            "Oh no, what was wrong with it?",
            "brakes and a tyre. the garage is Hallworth Motors on the ring road, they said thursday",
            "At least it can be fixed by thursday.",
        ], [
            "they rang, it's ready",
            "Great, one less thing to worry about.",
        ], []],
        [("which garage has my car?", "Hallworth Motors", "Hallworth Motors.", "workplace")],
    ),
    (
        [[
            "new flat!! moved in today",
            "Congratulations! How does it feel?",
            "empty. it's a second floor place on Alderney Street, above a launderette",
            "Handy for laundry day at least.",
        ], [
            "the launderette smells amazing in the mornings",
            "A nice perk.",
        ], []],
        [("what street is my new flat on?", "Alderney Street", "Alderney Street.", "city")],
    ),
    (
        [[
            "I joined a running club",
            "Nice! How was the first session?",
            "hard. they're called the Harbour Harriers and they all run way too fast",
            "You'll catch up with time.",
        ], [
            "second session was better. I didn't come last",
            "Progress!",
        ], []],
        [("someone asked which running club I joined and my mind went blank", "Harbour Harriers", "The Harbour Harriers.", "team")],
    ),
    (
        [[
            "my grandma turns 90 next week",
            "What a milestone! Any plans?",
            "a big lunch. she was born in Cork and still has the accent after 60 years in Leeds",
            "That's lovely.",
        ], [
            "bought her a scarf for the lunch",
            "She'll love it.",
        ], []],
        [("where was my grandma born?", "Cork", "In Cork.", "hometown")],
    ),
    (
        [[
            "I'm a sonographer by the way, in case my hours seem weird",
            "Thanks for letting me know - that's demanding work.",
            "it's ok. nights this week",
            "Take care of yourself on those nights.",
        ], [
            "survived the nights. sleeping till 2pm",
            "Well earned.",
        ], []],
        [("if my new neighbour asks about work, what should I say I do?", "sonographer", "You're a sonographer.", "job")],
    ),
    (
        [[
            "we got chickens!! three of them",
            "How fun! Do they have names?",
            "Nugget, Peaches and the grumpy one is Duchess",
            "Great names.",
        ], [
            "Duchess pecked me again",
            "Living up to her reputation.",
        ], []],
        [("what's the grumpy chicken called?", "Duchess", "Duchess.", "pet_name")],
    ),
    (
        [[
            "help me remember: the wifi at my parents' house is 'hedgehog-lantern-42'",
            "Got it, hedgehog-lantern-42.",
            "they refuse to change it to something shorter",
            "Parents and wifi passwords, a classic.",
        ], [
            "visiting them this weekend",
            "Have a good visit.",
        ], []],
        [("what's the wifi password at my parents'?", "hedgehog-lantern-42", "It's hedgehog-lantern-42.", "code")],
    ),
    (
        [[
            "I'm doing an evening course in glassblowing",
            "That sounds relaxing. How's it going?",
            "good! the studio is called Molten & Co, it's by the canal",
            "Nice spot.",
        ], [
            "my first vase came out lopsided",
            "Happens to everyone at first.",
        ], []],
        [("which studio was my evening class at?", "Molten & Co", "At Molten & Co.", "venue"),
         ("remind me which evening course I signed up for", "glassblowing", "Glassblowing.", "study")],
    ),
    (
        [[
            "so my best mate Farida is moving to Halifax",
            "That's a big move. How do you feel about it?",
            "sad. she leaves next month",
            "You can still call and visit.",
        ], [
            "and her job there is at an aquarium, she's a marine biologist",
            "What a cool job.",
        ], []],
        [("where is Farida moving to?", "Halifax", "To Halifax.", "city"),
         ("what does my best mate do for work?", "marine biologist", "She's a marine biologist.", "combined")],
    ),
]


def natural_conversations() -> list[Episode]:
    """The held-out natural conversations as Episodes (every probe asked on the last day)."""
    episodes = []
    for days_text, probe_specs in CONVERSATIONS:
        days = [[{"role": "user" if i % 2 == 0 else "assistant", "text": text} for i, text in enumerate(day)]
                for day in days_text]
        last = len(days) - 1
        probes = [Probe(last, q, a, reply, kind, kind == "combined", kind) for q, a, reply, kind in probe_specs]
        episodes.append(Episode(days, probes, "natural", [p.answer for p in probes]))
    return episodes
