"""Phrasing banks for the synthetic memory episodes (`episodes.py`).

Each fact category has template lists for stating the fact ("state"), asking about it ("ask"),
the target reply ("reply"), stating the same kind of fact about somebody else ("other": used for
distractors and for the second half of combined facts), correcting it ("update"), and, where a fact
can be about a relative, asking/replying about that relative ("ask_of"/"reply_of", for combined
facts). Every list is split into "train" and "test" by hand; the two never share a template, so the
held-out episodes are phrased in ways the memory never saw.

Placeholders: {v} the value, {av} the value with its article ("an architect"), {s} the slot noun
("cat", "dentist appointment"), {old} the superseded value, {who}/{Who} another person ("my
colleague", "Ana"), {r} a relation ("sister"). The first letter of a rendered line is upper-cased.

Value-first phrasings ("{v} is what I call my {s}"), facts mentioned in passing inside a longer
sentence, and several facts per message are all represented on purpose: an earlier prototype only
learned "my X is Y".
"""

from __future__ import annotations

T = dict[str, list[str]]  # {"train": [...], "test": [...]}

CATEGORIES: dict[str, dict[str, T]] = {
    "pet_name": {
        "state": {
            "train": [
                "My {s} is called {v}.",
                "{v} is what I call my {s}.",
                "I named my {s} {v}.",
                "Our {s}'s name is {v}, by the way.",
                "{v}, my {s}, knocked a glass off the table again this morning.",
                "Fun fact: my {s} goes by {v}.",
                "The {s} is named {v} - my kid picked it.",
                "I call my {s} {v}. Don't ask why.",
                "{v} is the name of my {s}.",
                "Took my {s} {v} to the vet today, all fine.",
                "My {s}? {v}. Best name ever.",
                "We adopted a {s} last month and named it {v}.",
                "Everyone at the park loves my {s}, {v}.",
                "Did I tell you about my {s}? Name's {v}.",
            ],
            "test": [
                "The name on my {s}'s collar says {v}.",
                "{v} - that's my {s} - slept all day.",
                "We went with {v} as the name for our {s}.",
                "Meet {v}, my {s}.",
                "My {s} answers to {v}.",
                "If you hear me talk about {v}, that's my {s}.",
                "I ended up naming the {s} {v}.",
            ],
        },
        "ask": {
            "train": [
                "What's my {s} called?",
                "What did I name my {s}?",
                "What's the name of my {s}?",
                "Do you remember my {s}'s name?",
                "Remind me, what is my {s} called?",
                "What was my {s}'s name again?",
                "Can you tell me my {s}'s name?",
            ],
            "test": [
                "I blanked - what do I call my {s}?",
                "Quick one: my {s}'s name?",
                "Which name did I give my {s}?",
                "What name does my {s} go by?",
            ],
        },
        "reply": {
            "train": ["Your {s} is called {v}.", "Your {s}'s name is {v}.", "You named your {s} {v}.",
                      "That's {v}!"],
            "test": ["{v} - that's your {s}.", "If I remember right, it's {v}."],
        },
        "other": {
            "train": ["{Who}'s {s} is called {v}.", "{Who} has a {s} named {v}.",
                      "{Who} got a {s} and called it {v}."],
            "test": ["{v} is the name of {who}'s {s}.", "{Who} just adopted a {s} called {v}."],
        },
        "update": {
            "train": ["Actually, we renamed my {s} - it's {v} now.",
                      "Update: my {s} is now called {v}, the old name didn't stick.",
                      "We started calling the {s} {v} instead of {old}."],
            "test": ["We changed my {s}'s name to {v} after all.",
                     "My {s} isn't {old} anymore, we went with {v}."],
        },
        "ask_of": {
            "train": ["What's my {r}'s {s} called?", "What is the name of my {r}'s {s}?",
                      "Do you remember what my {r} named their {s}?"],
            "test": ["My {r}'s {s} - what was its name?", "Which name did my {r} give the {s}?"],
        },
        "reply_of": {
            "train": ["Your {r}'s {s} is called {v}.", "Their {s} is named {v}."],
            "test": ["It's {v}, your {r}'s {s}."],
        },
    },
    "person_name": {
        "state": {
            "train": [
                "My {s}'s name is {v}.",
                "My {s} is called {v}.",
                "{v} is my {s}.",
                "{v} is what everyone calls my {s}.",
                "I had lunch with my {s}, {v}, today.",
                "Talked to {v} on the phone - my {s} - for an hour.",
                "My {s} {v} is coming over on Sunday.",
                "The name of my {s}? It's {v}.",
                "Oh, my {s} is {v}, did I mention?",
                "I've got a new {s}, {v}.",
                "{v}, who is my {s}, sent me a funny video.",
                "So my {s} - {v} - says hi.",
                "You'd like my {s}. {v} is hilarious.",
            ],
            "test": [
                "For the record, my {s} goes by {v}.",
                "{v} (my {s}) is visiting next week.",
                "Bumped into {v} today; {v} is my {s}.",
                "The person I call my {s} is {v}.",
                "I should text my {s}, {v}, back.",
                "Guess who my {s} is? {v}.",
            ],
        },
        "ask": {
            "train": [
                "What's my {s}'s name?",
                "Who is my {s}?",
                "Remind me what my {s} is called.",
                "Do you remember the name of my {s}?",
                "What was my {s} called again?",
                "What did I say my {s}'s name was?",
            ],
            "test": [
                "My {s} - what's their name again?",
                "Who did I say my {s} was?",
                "Can you recall my {s}'s name for me?",
                "Name of my {s}, please?",
            ],
        },
        "reply": {
            "train": ["Your {s} is {v}.", "Your {s}'s name is {v}.", "That would be {v}.",
                      "You said your {s} is called {v}."],
            "test": ["{v} is your {s}.", "You told me it's {v}."],
        },
        "other": {
            "train": ["{Who}'s {s} is {v}.", "{Who}'s {s} is called {v}."],
            "test": ["{v} is {who}'s {s}.", "The {s} of {who} is named {v}."],
        },
        "update": {
            "train": ["My {s} changed - it's {v} now, not {old}.",
                      "I have a new {s}: {v} took over from {old}."],
            "test": ["{old} isn't my {s} anymore; now it's {v}."],
        },
    },
    "city": {
        "state": {
            "train": [
                "I live in {v}.",
                "I'm based in {v} these days.",
                "Home for me is {v}.",
                "{v} is where I live.",
                "It's raining again here in {v}.",
                "I moved to {v} a couple of years ago and I love it.",
                "My flat is in {v}.",
                "I've been living in {v} since the spring.",
                "{v} is home now.",
                "Rent in {v} is getting ridiculous, I swear.",
                "I'm writing from {v}, where I live.",
                "We settled in {v} after the wedding.",
                "Living in {v} has its perks.",
            ],
            "test": [
                "These days I call {v} home.",
                "My place is over in {v}.",
                "The traffic in {v}, where I live, was awful today.",
                "{v} - that's where I live now.",
                "I reside in {v}.",
                "Our house is in {v}.",
            ],
        },
        "ask": {
            "train": ["Where do I live?", "Which city do I live in?", "Remind me where I'm based.",
                      "Do you remember what city I live in?", "Where's home for me?",
                      "What city did I say I live in?"],
            "test": ["In which town is my home?", "Where am I living these days?",
                     "Which city is my place in?", "Can you recall where I live?"],
        },
        "reply": {
            "train": ["You live in {v}.", "You're based in {v}.", "Home for you is {v}."],
            "test": ["{v} is where you live.", "In {v}."],
        },
        "other": {
            "train": ["{Who} lives in {v}.", "{Who} is based in {v}.", "{Who} just moved to {v}."],
            "test": ["{v} is where {who} lives.", "{Who} has a flat in {v}."],
        },
        "update": {
            "train": ["Big news: I moved! I live in {v} now.",
                      "We relocated from {old} to {v} last week."],
            "test": ["I'm no longer in {old}; I've moved to {v}."],
        },
        "ask_of": {
            "train": ["Where does my {r} live?", "Which city is my {r} based in?",
                      "Do you remember where my {r} lives?"],
            "test": ["In which city does my {r} live?", "My {r} lives where, again?"],
        },
        "reply_of": {
            "train": ["Your {r} lives in {v}.", "They live in {v}."],
            "test": ["In {v} - that's where your {r} lives."],
        },
    },
    "hometown": {
        "state": {
            "train": [
                "I grew up in {v}.",
                "I'm originally from {v}.",
                "My hometown is {v}.",
                "{v} is where I grew up.",
                "I was born and raised in {v}.",
                "Back in {v}, where I grew up, we had a huge festival every summer.",
                "My parents still live in {v}, where I grew up.",
                "I spent my whole childhood in {v}.",
                "I'm a {v} kid, born and bred.",
                "{v} will always be my hometown.",
                "Growing up in {v} was fun.",
                "I come from {v} originally.",
            ],
            "test": [
                "My roots are in {v}.",
                "{v} - that's where I spent my childhood.",
                "As a kid I lived in {v}.",
                "The town I grew up in is {v}.",
                "Originally? {v}.",
                "I was raised in {v}.",
            ],
        },
        "ask": {
            "train": ["Where did I grow up?", "What's my hometown?", "Where am I originally from?",
                      "Remind me where I was raised.", "Which city did I grow up in?"],
            "test": ["Where do I come from originally?", "Which place is my hometown?",
                     "Where did I spend my childhood?"],
        },
        "reply": {
            "train": ["You grew up in {v}.", "Your hometown is {v}.", "You're originally from {v}."],
            "test": ["{v} is where you grew up.", "In {v}."],
        },
        "other": {
            "train": ["{Who} grew up in {v}.", "{Who} is originally from {v}."],
            "test": ["{v} is {who}'s hometown."],
        },
    },
    "job": {
        "state": {
            "train": [
                "I work as {av}.",
                "I'm {av}.",
                "I've been {av} for about ten years.",
                "My job? I'm {av}.",
                "Long shift today - that's life as {av}.",
                "Being {av} is more tiring than people think.",
                "I trained as {av} and still love it.",
                "For work I'm {av}.",
                "I earn my living as {av}.",
                "{Av} - that's what I do for a living.",
                "I just started a new job as {av}.",
                "People are surprised when I tell them I'm {av}.",
            ],
            "test": [
                "Professionally, I'm {av}.",
                "My day job is {av}.",
                "I make a living as {av}.",
                "{Av} by trade, that's me.",
                "My profession is {v}.",
                "I got hired as {av} last year.",
            ],
        },
        "ask": {
            "train": ["What do I do for a living?", "What's my job?", "What do I work as?",
                      "Remind me what my job is.", "Do you remember my profession?"],
            "test": ["What's my line of work?", "What did I say I do for work?",
                     "Which job do I have?"],
        },
        "reply": {
            "train": ["You're {av}.", "You work as {av}.", "Your job is {v}."],
            "test": ["You said you're {av}.", "{Av}."],
        },
        "other": {
            "train": ["{Who} works as {av}.", "{Who} is {av}."],
            "test": ["{Who} makes a living as {av}.", "{Who} trained as {av}."],
        },
        "update": {
            "train": ["I switched careers - I'm {av} now.",
                      "New job! I'm not {old} anymore, I'm working as {av}."],
            "test": ["I quit being {old}; now I work as {av}."],
        },
        "ask_of": {
            "train": ["What does my {r} do for a living?", "What's my {r}'s job?",
                      "Do you remember what my {r} works as?"],
            "test": ["My {r} works as what?", "What's my {r}'s line of work?"],
        },
        "reply_of": {
            "train": ["Your {r} is {av}.", "They work as {av}."],
            "test": ["{Av} - that's your {r}'s job."],
        },
    },
    "workplace": {
        "state": {
            "train": [
                "I work at {v}.",
                "My employer is {v}.",
                "{v} is where I work.",
                "I've been at {v} for three years now.",
                "Busy week at {v}, my company.",
                "I got a job at {v}!",
                "The company I work for is {v}.",
                "Everyone at {v}, my office, is off on Friday.",
                "I'm employed by {v}.",
                "I joined {v} in January.",
                "The canteen at {v}, where I work, is great.",
                "My badge for {v} stopped working today, ugh.",
            ],
            "test": [
                "I'm on the payroll at {v}.",
                "{v} hired me last spring.",
                "My workplace is {v}.",
                "I clock in at {v} every morning.",
                "The firm I work for is called {v}.",
                "I do my nine to five at {v}.",
            ],
        },
        "ask": {
            "train": ["Where do I work?", "Which company do I work for?", "Who's my employer?",
                      "What's the name of my company?", "Remind me where I work."],
            "test": ["Which firm am I at?", "Who do I work for again?",
                     "What company employs me?"],
        },
        "reply": {
            "train": ["You work at {v}.", "Your employer is {v}.", "You're at {v}."],
            "test": ["{v} is your employer.", "At {v}."],
        },
        "other": {
            "train": ["{Who} works at {v}.", "{Who} got a job at {v}."],
            "test": ["{Who} is employed by {v}."],
        },
        "update": {
            "train": ["I changed jobs - I work at {v} now.", "I left {old} and joined {v}."],
            "test": ["My new employer is {v}; I'm done with {old}."],
        },
        "ask_of": {
            "train": ["Where does my {r} work?", "Which company does my {r} work for?"],
            "test": ["Who employs my {r}?"],
        },
        "reply_of": {
            "train": ["Your {r} works at {v}.", "They work at {v}."],
            "test": ["At {v}, your {r}'s company."],
        },
    },
    "date": {
        "state": {
            "train": [
                "My {s} is on {v}.",
                "{v} is my {s}.",
                "Don't let me forget: my {s} is {v}.",
                "I've got my {s} on {v}.",
                "My {s} falls on {v} this year.",
                "Mark it down - {s}, {v}.",
                "Nervous about my {s} on {v}.",
                "{v} is the date of my {s}.",
                "The {s} is set for {v}.",
                "So my {s} got scheduled for {v}.",
                "Can't wait for {v}, it's my {s}!",
                "Heads up, my {s} is {v}.",
            ],
            "test": [
                "My {s}? That's {v}.",
                "The date for my {s} is {v}.",
                "On {v} I have my {s}.",
                "{v} - mark that as my {s}.",
                "They booked my {s} for {v}.",
                "Please note my {s} lands on {v}.",
            ],
        },
        "ask": {
            "train": ["When is my {s}?", "What's the date of my {s}?", "When's my {s} again?",
                      "Remind me when my {s} is.", "What date did I say my {s} was?"],
            "test": ["Which day is my {s} on?", "My {s} - when was that?",
                     "On what date is my {s}?"],
        },
        "reply": {
            "train": ["Your {s} is on {v}.", "It's on {v}.", "{v}."],
            "test": ["You have your {s} on {v}.", "That's {v}."],
        },
        "other": {
            "train": ["{Who}'s {s} is on {v}.", "{Who} has a {s} on {v}."],
            "test": ["{v} is {who}'s {s}."],
        },
        "update": {
            "train": ["My {s} got moved to {v}.", "They rescheduled my {s} from {old} to {v}."],
            "test": ["My {s} is no longer {old}, it's {v} now."],
        },
    },
    "code": {
        "state": {
            "train": [
                "My {s} is {v}.",
                "The {s} is {v}.",
                "{v} is my {s}.",
                "Can you remember this for me? {s}: {v}.",
                "Note to self - {s} is {v}.",
                "For later: the {s} is {v}.",
                "Just so I have it somewhere, my {s} is {v}.",
                "{v} - that's the {s}.",
                "Writing this down: {s} {v}.",
                "They gave me {v} as my {s}.",
                "The new {s} they gave me is {v}.",
                "I keep forgetting my {s}. It's {v}.",
            ],
            "test": [
                "Store this please: {v} is the {s}.",
                "Remember {v}, it's my {s}.",
                "The {s} I got today is {v}.",
                "In case I forget, {s} = {v}.",
                "Here's my {s}: {v}.",
                "Jotting it here: {v} for the {s}.",
            ],
        },
        "ask": {
            "train": ["What's my {s}?", "What was the {s} again?", "Remind me of my {s}.",
                      "Do you remember the {s}?", "What did I say the {s} was?",
                      "I need my {s} - what is it?"],
            "test": ["Can you give me the {s}?", "Which {s} did I tell you?",
                     "What's the {s} I gave you?"],
        },
        "reply": {
            "train": ["Your {s} is {v}.", "The {s} is {v}.", "It's {v}."],
            "test": ["You told me {v}.", "{v} is your {s}."],
        },
        "other": {
            "train": ["{Who}'s {s} is {v}.", "{Who} uses {v} as the {s}."],
            "test": ["{v} is {who}'s {s}."],
        },
        "update": {
            "train": ["They changed the {s}; it's {v} now.", "New {s}: {v}. The old one was {old}."],
            "test": ["The {s} isn't {old} anymore, it's been reset to {v}."],
        },
    },
    "preference": {
        "state": {
            "train": [
                "My {s} is {v}.",
                "{v} is my {s}.",
                "Nothing beats {v}, honestly - definitely my {s}.",
                "If you asked me my {s}, I'd say {v}.",
                "I'm obsessed with {v}. {S}, no contest.",
                "{v}, always. That's my {s}.",
                "My {s} has been {v} for years.",
                "Hands down, {v} is my {s}.",
                "When it comes to my {s}, it's {v}.",
                "I'd pick {v} every time - my {s}.",
                "Ask anyone: my {s} is {v}.",
                "Oh, {v}! My {s}.",
            ],
            "test": [
                "Personally, my {s} is {v}.",
                "{v} wins for my {s}, easily.",
                "If I had to choose a {s}, {v}.",
                "I've always loved {v}; it's my {s}.",
                "Top of my list for {s}: {v}.",
                "No question, my {s} is {v}.",
            ],
        },
        "ask": {
            "train": ["What's my {s}?", "Do you remember my {s}?", "What did I say my {s} was?",
                      "Remind me, what is my {s}?", "What's my {s} again?"],
            "test": ["Which one is my {s}?", "What would I name as my {s}?",
                     "Can you recall my {s}?"],
        },
        "reply": {
            "train": ["Your {s} is {v}.", "You love {v}.", "It's {v}."],
            "test": ["{v} - your {s}.", "You said {v}."],
        },
        "other": {
            "train": ["{Who}'s {s} is {v}.", "{Who} loves {v} - their {s}."],
            "test": ["{v} is {who}'s {s}."],
        },
        "update": {
            "train": ["I've changed my mind - my {s} is {v} now.",
                      "New {s}: {v}. Sorry, {old}."],
            "test": ["Honestly {v} has replaced {old} as my {s}."],
        },
    },
    "plan": {
        "state": {
            "train": [
                "I'm going to {v} next month.",
                "We're flying to {v} for our holiday.",
                "My next trip is to {v}.",
                "{v} is where I'm heading on holiday.",
                "Just booked a week in {v}!",
                "Planning a trip to {v} in the autumn.",
                "Counting down the days until {v}.",
                "The holiday this year is {v}.",
                "We finally decided: {v} for the summer trip.",
                "I'll be in {v} for two weeks in June.",
                "Packing for {v} already, way too early.",
                "My partner and I are off to {v} soon.",
            ],
            "test": [
                "Destination for the big trip: {v}.",
                "The tickets to {v} are booked.",
                "Next holiday? {v}.",
                "I'm travelling to {v} later this year.",
                "{v} is the plan for our vacation.",
                "Off to {v} soon - can't wait.",
            ],
        },
        "ask": {
            "train": ["Where am I going on holiday?", "Where's my next trip?",
                      "What's the destination of my trip?", "Remind me where I'm travelling to.",
                      "Where did I say I'm going on vacation?"],
            "test": ["Which place is my upcoming trip to?", "Where am I off to soon?",
                     "My holiday destination - what was it?"],
        },
        "reply": {
            "train": ["You're going to {v}.", "Your next trip is to {v}.", "{v}!"],
            "test": ["You're heading to {v}.", "To {v}."],
        },
        "other": {
            "train": ["{Who} is going to {v} next month.", "{Who} booked a trip to {v}."],
            "test": ["{Who} is off to {v} soon."],
        },
        "update": {
            "train": ["Change of plans - we're going to {v} instead.",
                      "We cancelled {old}; the trip is to {v} now."],
            "test": ["Not {old} after all; we booked {v}."],
        },
    },
    "vehicle": {
        "state": {
            "train": [
                "I drive {av}.",
                "My car is {av}.",
                "I've got an old {v}.",
                "The {v} - my car - broke down again.",
                "Just bought {av}!",
                "I get around in my {v}.",
                "My {v} needs new tyres.",
                "{Av} is what I drive.",
                "Washed my car today, the {v} looks brand new.",
                "I've had my {v} for years.",
                "I finally sold the old one and got {av}.",
                "Parking {av} in the city is a nightmare, trust me.",
            ],
            "test": [
                "What I drive is {av}.",
                "My wheels? {Av}.",
                "I'm driving {av} these days.",
                "Got my {v} back from the garage.",
                "The car I own is {av}.",
                "I commute in {av}.",
            ],
        },
        "ask": {
            "train": ["What car do I drive?", "What's my car?", "Remind me what I drive.",
                      "Which car did I say I have?", "What kind of car do I own?"],
            "test": ["Which vehicle is mine?", "What am I driving these days?",
                     "Do you recall my car?"],
        },
        "reply": {
            "train": ["You drive {av}.", "Your car is {av}.", "{Av} - that's your car."],
            "test": ["You have {av}.", "It's {av}."],
        },
        "other": {
            "train": ["{Who} drives {av}.", "{Who} just bought {av}."],
            "test": ["{Who}'s car is {av}."],
        },
        "update": {
            "train": ["I traded in the {old}; I drive {av} now.",
                      "New car! It's {av}."],
            "test": ["Sold my {old} and got {av}."],
        },
    },
    "allergy": {
        "state": {
            "train": [
                "I'm allergic to {v}.",
                "I have an allergy to {v}.",
                "Anything with {v} in it makes me really sick - I'm allergic.",
                "Careful with {v} around me, allergy.",
                "My doctor confirmed I'm allergic to {v}.",
                "Can't have {v}, I'm allergic.",
                "I found out I'm allergic to {v} the hard way.",
                "The one thing I'm allergic to is {v}.",
                "Allergy-wise, it's {v} for me.",
                "{v}? Allergic, sadly.",
                "I carry an EpiPen because of {v}.",
                "I react badly to {v}; it's an allergy.",
            ],
            "test": [
                "My body does not tolerate {v} at all - allergic.",
                "Anything with {v} is off limits for me, I'm allergic.",
                "I'm seriously allergic to {v}.",
                "Allergic reaction to {v} last year, so I avoid it.",
                "Turns out {v} is my allergy.",
                "Note: allergic to {v}.",
            ],
        },
        "ask": {
            "train": ["What am I allergic to?", "What's my allergy?", "Do you remember my allergy?",
                      "Remind me what I can't have.", "What did I say I'm allergic to?"],
            "test": ["Which allergy do I have?", "What should I avoid because of my allergy?",
                     "Can you recall what I'm allergic to?"],
        },
        "reply": {
            "train": ["You're allergic to {v}.", "Your allergy is {v}.", "{v}."],
            "test": ["You said {v}.", "You can't have {v}."],
        },
        "other": {
            "train": ["{Who} is allergic to {v}.", "{Who} has an allergy to {v}."],
            "test": ["{Who} can't have {v}, allergies."],
        },
    },
    "hobby": {
        "state": {
            "train": [
                "I've taken up {v}.",
                "My new hobby is {v}.",
                "I've been getting really into {v}.",
                "{v} is my new thing.",
                "Spent the whole weekend on {v}.",
                "I started {v} classes last month.",
                "These days my hobby is {v}.",
                "Nothing relaxes me like {v}.",
                "I'm hooked on {v}.",
                "My free time all goes into {v} now.",
                "{v} has been my hobby since the summer.",
                "Tried {v} on a whim and now I'm obsessed.",
            ],
            "test": [
                "For fun I do {v}.",
                "My evenings are for {v} now.",
                "I picked up {v} recently.",
                "{v} - that's what I do to unwind.",
                "I joined a {v} club.",
                "My pastime is {v}.",
            ],
        },
        "ask": {
            "train": ["What's my new hobby?", "What hobby did I take up?",
                      "What do I do in my free time?", "Remind me what I'm into these days.",
                      "What did I say my hobby was?"],
            "test": ["What's my pastime?", "Which hobby have I picked up?",
                     "How do I spend my free time lately?"],
        },
        "reply": {
            "train": ["You've taken up {v}.", "Your hobby is {v}.", "You're into {v}."],
            "test": ["{v}, lately.", "You do {v}."],
        },
        "other": {
            "train": ["{Who} has taken up {v}.", "{Who} is really into {v}."],
            "test": ["{Who}'s hobby is {v}."],
        },
        "update": {
            "train": ["I gave up {old}; now I'm doing {v}.", "Switched hobbies: {v} now."],
            "test": ["Dropped {old}, I'm into {v} these days."],
        },
        "ask_of": {
            "train": ["What's my {r}'s hobby?", "What is my {r} into these days?"],
            "test": ["Which hobby did my {r} pick up?"],
        },
        "reply_of": {
            "train": ["Your {r} is into {v}.", "They've taken up {v}."],
            "test": ["{v} - your {r}'s hobby."],
        },
    },
    "language": {
        "state": {
            "train": [
                "I'm learning {v}.",
                "I've started learning {v}.",
                "My language class is {v}.",
                "{v} is the language I'm learning.",
                "Studying {v} every morning on the train.",
                "I'm trying to get better at {v}.",
                "I signed up for a {v} course.",
                "Had my first {v} lesson today!",
                "{v} grammar is killing me.",
                "I practise {v} with a tutor twice a week.",
                "Learning {v} is harder than I thought.",
                "My goal this year: learn {v}.",
            ],
            "test": [
                "I'm picking up {v}.",
                "These days I study {v}.",
                "{v} lessons are going well.",
                "The language I'm working on is {v}.",
                "I enrolled in {v} classes.",
                "I'm teaching myself {v}.",
            ],
        },
        "ask": {
            "train": ["What language am I learning?", "Which language am I studying?",
                      "Remind me what language I'm learning.", "What language class do I take?"],
            "test": ["Which language have I been studying?", "What language am I picking up?",
                     "What's the language I'm working on?"],
        },
        "reply": {
            "train": ["You're learning {v}.", "You're studying {v}.", "{v}."],
            "test": ["You're working on {v}.", "{v}, I believe."],
        },
        "other": {
            "train": ["{Who} is learning {v}.", "{Who} started a {v} course."],
            "test": ["{Who} is studying {v}."],
        },
        "ask_of": {
            "train": ["What language is my {r} learning?", "Which language is my {r} studying?"],
            "test": ["My {r} is learning which language?"],
        },
        "reply_of": {
            "train": ["Your {r} is learning {v}.", "They're studying {v}."],
            "test": ["{v}, your {r} is learning it."],
        },
    },
    "study": {
        "state": {
            "train": [
                "I'm studying {v} at university.",
                "I study {v}.",
                "My degree is in {v}.",
                "{v} is my major.",
                "I'm doing a master's in {v}.",
                "Finished another {v} assignment today.",
                "I went back to school for {v}.",
                "I'm in my second year of {v}.",
                "Lectures in {v} start at eight, ugh.",
                "I chose {v} as my subject.",
                "My course is {v}.",
                "{v} students like me have way too many exams.",
            ],
            "test": [
                "My field of study is {v}.",
                "I'm enrolled in {v}.",
                "At uni I do {v}.",
                "I majored in {v}.",
                "My thesis is in {v}.",
                "I'm reading {v} at college.",
            ],
        },
        "ask": {
            "train": ["What do I study?", "What's my degree in?", "What am I studying?",
                      "Remind me what my major is.", "What subject did I say I study?"],
            "test": ["What's my field of study?", "Which subject am I enrolled in?",
                     "What course am I on?"],
        },
        "reply": {
            "train": ["You study {v}.", "Your degree is in {v}.", "{v}."],
            "test": ["You're enrolled in {v}.", "{v}, according to you."],
        },
        "other": {
            "train": ["{Who} studies {v}.", "{Who} is doing a degree in {v}."],
            "test": ["{Who} majored in {v}."],
        },
    },
    "team": {
        "state": {
            "train": [
                "I support {v}.",
                "{v} is my team.",
                "I'm a huge {v} fan.",
                "Did you see {v} last night? My team!",
                "I've supported {v} since I was a kid.",
                "My team is {v}, through thick and thin.",
                "{v} lost again, I'm heartbroken.",
                "I have a season ticket for {v}.",
                "I'm wearing my {v} shirt today.",
                "My whole family supports {v}.",
                "Come on {v}! Big match tonight.",
                "I'd never support anyone but {v}.",
            ],
            "test": [
                "I root for {v}.",
                "The team I follow is {v}.",
                "{v} fan here, always.",
                "I cheer for {v}.",
                "My club is {v}.",
                "Supporting {v} is a lifelong commitment.",
            ],
        },
        "ask": {
            "train": ["Which team do I support?", "What's my team?", "Who do I support?",
                      "Remind me which team I follow."],
            "test": ["Who do I root for?", "Which club is mine?", "What team am I a fan of?"],
        },
        "reply": {
            "train": ["You support {v}.", "Your team is {v}.", "{v}!"],
            "test": ["You're a {v} fan.", "You root for {v}."],
        },
        "other": {
            "train": ["{Who} supports {v}.", "{Who} is a {v} fan."],
            "test": ["{Who} roots for {v}."],
        },
    },
    "venue": {
        "state": {
            "train": [
                "My {s} is {v}.",
                "{v} is my {s}.",
                "Went to {v} again today - my {s}, you know.",
                "The name of my {s}? {v}.",
                "Everyone knows {v}, it's my {s}.",
                "My {s} is called {v}.",
                "I'm a regular at {v}; it's my {s}.",
                "If you ever need me, try {v}. My {s}.",
                "For the record, {v} is my {s}.",
                "There's this place, {v}, my {s}.",
                "{v}, my {s}, just got new owners.",
                "My {s} has always been {v}.",
            ],
            "test": [
                "You'll find me at {v} a lot - my {s}.",
                "{v} counts as my {s}.",
                "The place I call my {s} is {v}.",
                "Oh, my {s} is {v}, by the way.",
                "Mine is {v} when it comes to my {s}.",
                "{v} - that's the {s} I always mean.",
            ],
        },
        "ask": {
            "train": ["What's my {s} called?", "Which place is my {s}?", "What's the name of my {s}?",
                      "Remind me what my {s} is.", "Do you remember my {s}?"],
            "test": ["Which one did I say was my {s}?", "My {s} - what's it called again?",
                     "Can you name my {s}?"],
        },
        "reply": {
            "train": ["Your {s} is {v}.", "It's {v}.", "Your {s}? {v}."],
            "test": ["{v} is your {s}.", "You told me {v}."],
        },
        "other": {
            "train": ["{Who}'s {s} is {v}.", "{Who} goes to {v} all the time."],
            "test": ["{v} is {who}'s {s}."],
        },
        "update": {
            "train": ["I've switched - my {s} is {v} now.", "My {s} changed from {old} to {v}."],
            "test": ["Moved on from {old}; {v} is my {s} now."],
        },
    },
}

# Updates that work for any category with a topic phrase (the category's own "update" list adds the
# idiomatic ones). {topic} is rendered first, then the rest of the template.
TOPICS: dict[str, str] = {
    "pet_name": "my {s}'s name",
    "person_name": "my {s}'s name",
    "city": "where I live",
    "workplace": "where I work",
    "date": "my {s}",
    "code": "the {s}",
    "preference": "my {s}",
    "plan": "the trip",
    "venue": "my {s}",
}

GENERIC_UPDATES: T = {
    "train": [
        "Correction about {topic}: it's {v} now, not {old}.",
        "Scratch what I said about {topic} - it's actually {v}.",
        "Oh, I need to update {topic}. It's {v} now.",
        "Small update on {topic}: {v} instead of {old}.",
        "Forget {old}. For {topic}, it's {v} now.",
        "Heads up, {topic} changed. It's {v} now.",
        "I was wrong earlier about {topic}; it's {v}.",
        "New info on {topic}: {v}.",
        "Turns out {topic} is {v}, not {old}.",
        "Update: {topic} is now {v}.",
        "Quick fix to {topic} - {v}, not {old}.",
        "About {topic}: we changed it to {v}.",
    ],
    "test": [
        "Let me fix something: {topic} is {v}, no longer {old}.",
        "Please note {topic} has changed to {v}.",
        "Not {old} anymore - {topic} is {v}.",
        "Revising {topic}: it's {v} from now on.",
        "So, {topic} is different now: {v}.",
        "Just so you know, {topic} switched to {v}.",
    ],
}

# Assistant acknowledgements after a fact; {v} versions echo the value.
ACKS: T = {
    "train": [
        "Got it!", "Noted.", "Good to know.", "Thanks for sharing that.", "Oh nice!",
        "I'll remember that.", "Okay, noted!", "Sounds good.", "Thanks, got it.", "Ah, lovely.",
        "Noted: {v}.", "{v} - got it.", "Got it, {v}.", "Oh, {v}! Nice.", "Okay, {v}. I'll keep that in mind.",
    ],
    "test": [
        "Understood.", "Okay, {v} it is.", "Right, {v}. Noted.", "Thanks for letting me know.",
        "Makes sense!", "Sure, I'll keep that in mind.", "Cool, {v}.",
    ],
}

# Glue between two facts packed into one user message.
JOINERS: T = {
    "train": [" Also, ", " Oh, and ", " And ", " Plus, ", " Another thing: ", " By the way, "],
    "test": [" On top of that, ", " Besides that, ", " One more thing - "],
}

# Chatter around a fact now and then: (before, after); "{fact}" stays as it was rendered.
FACT_WRAPPERS: dict[str, list[tuple[str, str]]] = {
    "train": [("Long day today. ", ""), ("So, random thing: ", ""), ("Before I forget - ", ""),
              ("Totally unrelated, but ", ""), ("", " Anyway, how are you?"), ("", " Just thought you should know."),
              ("", " Crazy, right?"), ("Ok. ", " Anyway."), ("Guess what? ", ""), ("", " Hope that makes sense.")],
    "test": [("Unrelated: ", ""), ("Okay, news. ", ""), ("", " Weird week."), ("By the by, ", " That's all.")],
}

# Openers put before a question now and then ("Quick question: where do I live?").
QUESTION_OPENERS: T = {
    "train": ["Quick question: ", "Hey, ", "Sorry, silly question - ", "Okay so, ", "Random, but ",
              "Help me out: ", "I forgot - ", "Hmm, "],
    "test": ["Remind me please: ", "Out of curiosity, ", "Wait, ", "Brain fog today. "],
}

# ... or after it ("Where do I live? I totally forgot.").
QUESTION_CLOSERS: T = {
    "train": [" I totally forgot.", " My memory is terrible.", " It's on the tip of my tongue.",
              " Need it for a form.", " Sorry if I asked before."],
    "test": [" Sorry, long day.", " Can't remember for the life of me."],
}

# Small talk: (user, assistant) exchanges with no facts to remember.
SMALL_TALK: dict[str, list[tuple[str, str]]] = {
    "train": [
        ("It's so cold today.", "Stay warm! A hot drink might help."),
        ("Ugh, Mondays.", "Hang in there - the week gets easier."),
        ("I just made a really good cup of coffee.", "Nice, enjoy it!"),
        ("Any tips for falling asleep faster?", "Try keeping a regular bedtime and dimming screens an hour before."),
        ("Traffic was terrible this morning.", "That's frustrating. Hope the rest of the day is smoother."),
        ("I finished a great book last night.", "That's a lovely feeling. Was the ending good?"),
        ("What's a good quick lunch idea?", "A wrap with hummus and veggies is quick and filling."),
        ("I'm so tired today.", "Sorry to hear that. Maybe an early night?"),
        ("The sun finally came out!", "Perfect excuse for a walk."),
        ("Can you tell me a joke?", "Why did the scarecrow win an award? He was outstanding in his field."),
        ("I watched a documentary about octopuses.", "They're amazing - three hearts and blue blood!"),
        ("How long should I boil an egg?", "About seven minutes for a jammy yolk."),
        ("I went for a run this morning.", "Great way to start the day!"),
        ("My internet is so slow today.", "Annoying! Restarting the router sometimes helps."),
        ("What's a good word for happy?", "Cheerful, content, or delighted all work."),
        ("Lunch was disappointing.", "Oh no. Dinner can make up for it."),
        ("I need motivation to clean my room.", "Set a ten-minute timer and just start - it snowballs."),
        ("It's my day off!", "Enjoy it - you've earned it."),
        ("I'm thinking about getting into podcasts.", "Good idea, there's one for every interest."),
        ("I burned the toast again.", "Happens to the best of us."),
        ("How do I remove a coffee stain?", "Blot it with cold water and a bit of dish soap."),
        ("Any idea what to cook tonight?", "A simple stir-fry is quick and uses up leftovers."),
        ("The neighbours are being loud again.", "That's rough. Earplugs might save the evening."),
        ("I can't decide what to watch.", "Pick something short so you don't lose the evening choosing."),
        ("Is it weird to eat cereal for dinner?", "Not at all, it's a classic."),
        ("Just got back from the supermarket.", "Anything good?"),
        ("How many cups in a litre?", "About four."),
        ("I have a meeting in ten minutes.", "Good luck, you've got this."),
        ("I'm bored.", "Maybe a short walk or a new playlist?"),
        ("My plants are looking sad.", "Check the soil - too much water is as bad as too little."),
    ],
    "test": [
        ("Rainy day again, huh.", "Perfect weather for tea and a blanket."),
        ("Recommend me a hobby?", "Sketching is cheap and relaxing to start."),
        ("I overslept.", "Happens! Take a breath and ease in."),
        ("What rhymes with orange?", "Famously nothing, though 'door hinge' comes close."),
        ("Had way too much pizza.", "No regrets, I hope."),
        ("My phone battery dies so fast.", "Lowering screen brightness helps a lot."),
        ("It's windy out there.", "Hold on to your hat!"),
        ("Give me a fun fact.", "Honey never spoils - edible honey was found in ancient tombs."),
        ("The train was late again.", "That's annoying. At least you made it."),
        ("I want to drink more water.", "Keep a bottle on your desk as a reminder."),
        ("Writing emails all day.", "Sounds draining. Take a break when you can."),
        ("I think I'm catching a cold.", "Rest up and drink plenty of fluids."),
    ],
}

GREETINGS: dict[str, list[tuple[str, str]]] = {
    "train": [
        ("Good morning!", "Good morning! How can I help today?"),
        ("Hey, it's me again.", "Hi! Good to see you."),
        ("Hi!", "Hello! What's up?"),
        ("Morning.", "Morning! How are you?"),
        ("Hello again.", "Welcome back!"),
    ],
    "test": [
        ("Evening!", "Good evening! What can I do for you?"),
        ("Back again.", "Hi there, welcome back."),
        ("Hiya.", "Hey! How's it going?"),
    ],
}
