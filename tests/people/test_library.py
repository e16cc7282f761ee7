"""The library's guarantees: incremental people, photo constraints, rejections, user edits and stable ids."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.people import Library, LibraryEditError, open_library
from tests.people.conftest import Photos


def person_of(lib: Library, face: int) -> int | None:
    row = lib.db.execute("SELECT person_id FROM face_people WHERE face_id = ?", (face,)).fetchone()
    return row[0]


def faces_by_person(lib: Library) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for f, p in lib.db.execute("SELECT face_id, person_id FROM face_people WHERE person_id IS NOT NULL"):
        out.setdefault(p, set()).add(f)
    return out


def test_people_are_founded_then_grow_as_photos_arrive(library: Library, photos: Photos) -> None:
    first = library.add_detected([photos(0), photos(0)])
    assert (first.founded, first.joined) == (0, 0)  # two faces: fewer than min_faces 3, they wait
    assert library.stats()["waiting"] == 2
    second = library.add_detected([photos(0), photos(1)])
    assert second.founded == 1 and len(library.people()) == 1
    third = library.add_detected([photos(0), photos(0)])
    assert third.joined == 2 and third.founded == 0
    (p,) = library.people()
    assert p.faces == 5
    assert library.stats()["waiting"] == 1  # person 1's single face still waits


def test_two_faces_of_one_photo_never_become_one_person(library: Library, photos: Photos) -> None:
    library.add_detected([photos(0) for _ in range(3)])
    (p,) = library.people()
    report = library.add_detected([photos(0, 0), photos(0, 0, 0)])  # twins: each photo may give person 0 one face
    assert report.joined == 2
    by_photo = library.db.execute("SELECT photo_id, person_id, COUNT(*) FROM face_people WHERE person_id IS NOT NULL "
                                  "GROUP BY photo_id, person_id HAVING COUNT(*) > 1").fetchall()
    assert by_photo == []
    # and the waiting twins of the group photos do not found a person together with each other's photo
    library.add_detected([photos(0, 0)])
    assert library.db.execute("SELECT COUNT(*) FROM (SELECT 1 FROM face_people WHERE person_id IS NOT NULL GROUP BY "
                              "photo_id, person_id HAVING COUNT(*) > 1)").fetchone()[0] == 0


def test_a_rejected_face_never_returns_to_that_person(library: Library, photos: Photos) -> None:
    library.add_detected([photos(0) for _ in range(4)])
    (p,) = library.people()
    face = sorted(faces_by_person(library)[p.id])[0]
    assert library.reject([face]) == 1
    assert person_of(library, face) is None
    library.add_detected([photos(0) for _ in range(3)])  # the person grows right next to the rejected face
    assert library.retry_waiting() == 0  # every waiting face is retried: it still may not join
    assert person_of(library, face) is None
    # a person split off and merged back does not bring it either
    other = sorted(faces_by_person(library)[p.id])[-2:]
    q = library.split(other)
    library.move([face], q)  # the user puts it with q (allowed: it was never rejected from q)
    library.merge(p.id, [q])
    assert person_of(library, face) is None and library.resolve(q) == p.id
    assert all(person_of(library, f) == p.id for f in other)


def test_what_the_user_did_is_kept_by_later_adds(library: Library, photos: Photos) -> None:
    library.add_detected([photos(0) for _ in range(3)] + [photos(1) for _ in range(3)])
    a, b = sorted(p.id for p in library.people())
    moved = sorted(faces_by_person(library)[a])[0]
    library.move([moved], b)  # the user says this face of 0 is 1's
    library.name(b, "Bea")
    before = faces_by_person(library)
    library.add_detected([photos(0) for _ in range(5)] + [photos(1) for _ in range(5)])
    library.retry_waiting()
    after = faces_by_person(library)
    assert before[a] <= after[a] and before[b] <= after[b]  # nothing left anyone: they only grew
    assert person_of(library, moved) == b
    assert library.person(b).name == "Bea"
    assert library.db.execute("SELECT how FROM face_people WHERE face_id = ?", (moved,)).fetchone()[0] == "user"


def test_person_ids_are_stable_and_merged_ids_lead_to_the_target(library: Library, photos: Photos) -> None:
    library.add_detected([photos(0) for _ in range(3)])
    library.add_detected([photos(1) for _ in range(3)])
    a, b = sorted(p.id for p in library.people())
    library.name(b, "Bo")
    assert library.merge(a, [b]) == 3
    assert library.resolve(b) == a and library.person(a).name == "Bo"  # the unnamed target takes the name
    library.add_detected([photos(2) for _ in range(3)])
    assert max(p.id for p in library.people()) not in (a, b)  # a new person gets a new id, not a merged one's
    assert [p.faces for p in library.people() if p.id == a] == [6]


def test_edits_that_would_join_two_faces_of_one_photo_are_refused(library: Library, photos: Photos) -> None:
    library.add_detected([photos(0) for _ in range(3)] + [photos(1) for _ in range(3)] + [photos(0, 1)])
    a, b = sorted(p.id for p in library.people())
    before = faces_by_person(library)
    with pytest.raises(LibraryEditError, match="same photo"):
        library.merge(a, [b])
    pair = [f for f, in library.db.execute("SELECT face_id FROM face_people WHERE photo_id = (SELECT MAX(id) FROM photos)")]
    with pytest.raises(LibraryEditError, match="same photo"):
        library.split(pair)
    with pytest.raises(LibraryEditError, match="photo"):
        library.move([pair[1] if person_of(library, pair[0]) == a else pair[0]], a)
    assert faces_by_person(library) == before  # nothing changed
    assert [p.id for p, _, _ in library.suggestions(a)] == []  # people sharing a photo are never suggested


def test_names_are_unique_and_name_faces_joins_the_named_person(library: Library, photos: Photos) -> None:
    library.add_detected([photos(0) for _ in range(3)] + [photos(1) for _ in range(3)] + [photos(2), photos(2)])
    a, b = sorted(p.id for p in library.people())
    library.name(a, "Ann")
    with pytest.raises(LibraryEditError, match="already person"):
        library.name(b, " Ann ")
    waiting = [f.id for g in library.waiting_groups() for f in g]
    assert len(library.waiting_groups()) == 1 and len(waiting) == 2  # person 2's two faces: one group to name
    assert library.name_faces(waiting, "Ann") == a
    assert library.person(a).faces == 5
    gone = sorted(waiting)[0]
    library.reject([gone])  # a face the user took from Ann, waiting again, named with a group: it stays out
    assert library.name_faces([gone, *[f.id for f in library.faces_of(a)][:1]], "Ann") == a
    assert person_of(library, gone) is None
    assert {r[0] for r in library.db.execute("SELECT identity FROM faces WHERE id IN (SELECT face_id FROM face_people "
                                             "WHERE person_id = ?)", (a,))} == {"Ann"}  # search answers read it


def test_the_same_photo_twice_is_added_once(library: Library, photos: Photos) -> None:
    p = photos(0, 1)
    library.add_detected([p])
    again = library.add_detected([p, p])
    assert again.faces == 0 and library.stats() == {**library.stats(), "photos": 1, "faces": 2}


def test_photos_with_every_given_person_and_the_photo_view(library: Library, photos: Photos) -> None:
    library.add_detected([photos(0) for _ in range(3)] + [photos(1) for _ in range(3)] + [photos(0, 1), photos(0, 2)])
    a, b = sorted(p.id for p in library.people())
    both = library.photos_with([a, b])
    assert len(both) == 1 and {f.person_id for f in both[0].faces} == {a, b}
    assert len(library.photos_with([a])) == 5
    view = library.photo(both[0].id)
    assert view is not None and [f.box for f in view.faces] == [[0.0, 0, 8, 8], [10.0, 0, 18, 8]]


def test_dismissed_detections_are_removed_but_their_photo_stays(library: Library, photos: Photos) -> None:
    p = photos(3)
    library.add_detected([p])
    (face,) = [f for f, in library.db.execute("SELECT face_id FROM face_people")]
    assert library.dismiss([face]) == 1
    assert len(library.store) == 0 and library.stats()["photos"] == 1
    assert library.add_detected([p]).faces == 0  # it does not come back


def test_identify_gives_each_face_of_a_photo_a_different_person(library: Library, photos: Photos) -> None:
    library.add_detected([photos(0) for _ in range(3)])
    (p,) = library.people()
    found = library.identify(np.stack([photos.vector(0), photos.vector(0), photos.vector(4)]))
    assert [f[0] for f in found].count(p.id) == 1 and found[2][0] is None


def test_calibrate_fits_threshold_and_similarity_from_named_people(library: Library, photos: Photos) -> None:
    with pytest.raises(LibraryEditError, match="two named people"):
        library.calibrate()
    library.add_detected([photos(w) for w in (0, 0, 0, 1, 1, 1, 2, 2, 2)])
    for k, p in enumerate(library.people()):
        library.name(p.id, f"P{k}")
    out = library.calibrate()
    sim = library.similarity()
    assert sim.source == "fitted" and out["people"] == 3
    assert sim(0.02) > 0.9 > 0.1 > sim(1.8)  # same-person pairs are near 0.02, others near 2
    assert library.threshold == out["people_threshold"] <= out["threshold"] == library.index.threshold


def test_a_kill_inside_the_transaction_leaves_nothing_half_added(tmp_path, tiny_weights: str) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    root = tmp_path / "lib"
    code = f"""
import sys; sys.path.insert(0, {str(__import__('pathlib').Path(__file__).resolve().parents[2])!r})
from faceprint.people import open_library
from tests.people.conftest import Photos
lib = open_library({str(root)!r}, {{"weights": {tiny_weights!r}}}, detect=False)
ph = Photos()
lib.add_detected([ph(0) for _ in range(3)])
print("first", flush=True)
lib.add_detected([ph(0, 1) for _ in range(3)])
"""
    proc = subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, "FACEPRINT_FAULT": "library.assign@2"},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9 and "first" in proc.stdout  # killed at the second add, inside its transaction
    lib = open_library(root)
    try:
        assert lib.stats() == {"photos": 3, "faces": 3, "people": 1, "named": 0, "waiting": 0}
        assert len(lib.store) == 3 and lib.store.searchable() == 3
        assert lib.add_detected([Photos()(0)]).faces == 0  # the same content hash as the first photo
    finally:
        lib.close()


def test_suggestions_rank_by_average_linkage(library: Library, photos: Photos) -> None:
    library.add_detected([photos(w) for w in (0, 0, 0, 1, 1, 1, 2, 2, 2)])
    a = library.people()[0].id
    pairs = {}
    for q in library.people():
        if q.id == a:
            continue
        xa = np.stack([np.frombuffer(r[0], np.float32) for r in library.db.execute(
            "SELECT vector FROM faces WHERE id IN (SELECT face_id FROM face_people WHERE person_id = ?)", (a,))])
        xb = np.stack([np.frombuffer(r[0], np.float32) for r in library.db.execute(
            "SELECT vector FROM faces WHERE id IN (SELECT face_id FROM face_people WHERE person_id = ?)", (q.id,))])
        pairs[q.id] = float(((xa[:, None] - xb[None]) ** 2).sum(-1).mean())  # brute force: every pair
    got = library.suggestions(a)
    assert [p.id for p, _, _ in got] == sorted(pairs, key=pairs.get)
    for p, s, d in got:
        assert d == pytest.approx(pairs[p.id], abs=1e-4) and s == pytest.approx(float(library.similarity()(d)))


def test_split_keeps_rejections(library: Library, photos: Photos) -> None:
    library.add_detected([photos(0) for _ in range(4)])
    (p,) = library.people()
    face = sorted(faces_by_person(library)[p.id])[0]
    library.reject([face])
    library.split([face])  # the user: it is someone else
    library.reject([face])  # no, not them either
    assert library.retry_waiting() == 0 and person_of(library, face) is None


@pytest.mark.parametrize("sources", ["target_rejected_from_source", "across_sources"])
def test_merge_leaves_out_faces_rejected_from_any_merged_person(library: Library, photos: Photos, sources: str) -> None:
    library.add_detected([photos(0) for _ in range(4)] + [photos(1) for _ in range(3)] + [photos(2) for _ in range(3)])
    a, b, c = sorted(x.id for x in library.people())
    face = sorted(faces_by_person(library)[a])[0]
    library.reject([face])
    library.move([face], b)  # the user puts it with b
    if sources == "target_rejected_from_source":
        library.merge(b, [a])
    else:
        library.merge(c, [a, b])
    assert person_of(library, face) is None  # a and b are one person now, and it is not a
    assert library.retry_waiting() == 0 and person_of(library, face) is None


def test_a_waiting_face_placed_by_another_writer_is_not_moved_by_a_retry(library: Library, photos: Photos) -> None:
    """retry_waiting reads the waiting faces inside its own transaction: a user's move committed by another process
    just before it is kept (the retry would otherwise join the face to the person nearest it)."""
    from dataclasses import replace

    library.config = replace(library.config, min_faces=10)
    library.add_detected([photos(0), photos(0), photos(0)] + [photos(1) for _ in range(3)])
    ids = [f for f, in library.db.execute("SELECT face_id FROM face_people ORDER BY face_id")]
    library.split([ids[2]])  # person 0, from one face
    q = library.split(ids[3:6])  # person 1
    other = open_library(library.store.root)  # another process: the web page
    real = library.store.refresh

    def refresh() -> None:  # the last thing retry_waiting does before its transaction
        other.move([ids[0]], q)  # the user: this face (of 0) is q's
        real()

    library.store.refresh = refresh  # type: ignore[method-assign]
    tried: list[list[int]] = []
    real_join = library._join  # noqa: SLF001

    def join(wid, *rest):  # type: ignore[no-untyped-def]
        tried.append(wid.tolist())
        return real_join(wid, *rest)

    library._join = join  # type: ignore[method-assign]  # noqa: SLF001
    try:
        joined = library.retry_waiting()
    finally:
        other.close()
    assert tried and ids[0] not in tried[0]  # read inside the retry's transaction: the moved face was not waiting
    assert joined == 1  # ids[1] joined person 0
    assert library.db.execute("SELECT person_id, how FROM face_people WHERE face_id = ?", (ids[0],)).fetchone() == (q, "user")


def test_repeated_and_known_photos_in_one_call_are_counted_once(library: Library, photos: Photos) -> None:
    p = photos(0)
    first = library.add_detected([p, p])  # the same content twice in one call: once
    assert (first.photos, first.already, first.faces) == (1, 1, 1)
    second = library.add_detected([photos(1), p])
    assert (second.photos, second.already, second.faces) == (1, 1, 1)
    assert library.stats()["photos"] == 2


def test_a_rerun_that_adds_nothing_changes_nothing(tmp_path, tiny_weights: str) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    lib = open_library(tmp_path / "lib", {"weights": tiny_weights}, detect=False)
    files = []
    for k in range(3):
        f = tmp_path / f"{k}.png"
        Image.new("RGB", (32, 32), (40 * k, 90, 200 - 40 * k)).save(f)
        files.append(f)
    lib.add_photos(files)
    snapshot = lambda: [lib.db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()  # noqa: E731
                        for t in ("face_people", "people", "rejections", "photos")]
    with lib.store.transaction():  # a face the user took out waits now; a rerun must not retry it
        lib.db.execute("UPDATE face_people SET person_id = NULL WHERE face_id = (SELECT MAX(face_id) FROM face_people)")
    before = snapshot()
    again = lib.add_photos(files)
    assert (again.photos, again.already, again.faces, again.retried) == (0, 3, 0, 0)
    assert snapshot() == before
    lib.close()


def test_split_or_move_away_is_remembered_but_a_merge_undoes_it(library: Library, photos: Photos) -> None:
    library.add_detected([photos(0) for _ in range(4)] + [photos(1) for _ in range(3)])
    a, b = sorted(x.id for x in library.people())
    face = sorted(faces_by_person(library)[a])[0]
    n = library.split([face])  # the user: not a
    library.reject([face])  # and not n either
    assert library.retry_waiting() == 0 and person_of(library, face) is None  # a does not take it back
    other = sorted(faces_by_person(library)[a])[0]
    library.move([other], b)  # moved away from a
    library.reject([other])  # and not b: waits
    assert library.retry_waiting() == 0 and person_of(library, other) is None
    third = sorted(faces_by_person(library)[a])[0]
    m = library.split([third])
    library.merge(a, [m])  # the user undoes that split: the face is back with a
    assert person_of(library, third) == a
    assert n != m


def test_an_automatic_join_never_writes_an_assigned_face(library: Library, photos: Photos) -> None:
    """The guard itself: _join's write skips a face that has a person, whatever its caller read."""
    library.add_detected([photos(0) for _ in range(3)] + [photos(1) for _ in range(3)])
    a, b = sorted(x.id for x in library.people())
    face = sorted(faces_by_person(library)[b])[0]
    photo = library.db.execute("SELECT photo_id FROM face_people WHERE face_id = ?", (face,)).fetchone()[0]
    near_a = photos.vector(0)  # the caller read it as waiting with a's vector: a join to a is chosen
    with library.store.transaction():
        joined = library._join(np.array([face]), near_a[None], np.array([photo]))  # noqa: SLF001
    assert joined == 0 and person_of(library, face) == b
