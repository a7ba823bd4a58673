"""Thread counts follow the work actually running: the main process leaves the cores its busy
children use, small k-NN problems run in numpy, and every setting is put back afterwards."""

from __future__ import annotations

import numpy as np
import torch

from audit import threads
from audit.embedding.embedder import Embedder


def test_processes_times_threads_stay_within_the_cores(monkeypatch):
    monkeypatch.setattr(threads, "cores", lambda: 8)
    assert [threads.per_process(p) for p in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]
    monkeypatch.setattr(threads, "busy_children", lambda: 3)
    assert threads.main_share() == 2


def test_limited_sets_and_restores_torch_and_faiss():
    import faiss

    torch_before, faiss_before = torch.get_num_threads(), faiss.omp_get_max_threads()
    with threads.limited(1):
        assert torch.get_num_threads() == 1 and faiss.omp_get_max_threads() == 1
    assert (torch.get_num_threads(), faiss.omp_get_max_threads()) == (torch_before, faiss_before)


def test_the_embedder_runs_on_the_cores_busy_workers_leave(monkeypatch):
    embedder = Embedder("random")
    seen = []
    original = embedder.model.encode_image

    def encode(x):
        seen.append(torch.get_num_threads())
        return original(x)

    monkeypatch.setattr(embedder.model, "encode_image", encode)
    monkeypatch.setattr(threads, "cores", lambda: 4)
    monkeypatch.setattr(threads, "busy_children", lambda: 3)  # four processes computing on four cores
    embedder.embed(np.zeros((2, 224, 224, 3), np.uint8))
    monkeypatch.setattr(threads, "busy_children", lambda: 0)
    embedder.embed(np.zeros((2, 224, 224, 3), np.uint8))
    assert seen == [1, 4]


def test_small_tail_weight_problems_skip_faiss(monkeypatch):
    import faiss

    from loops.mitigate.reweight import tail_weights

    x = np.random.default_rng(0).standard_normal((100, 8))
    reference = faiss.IndexFlatL2(8)
    reference.add(x.astype(np.float32))
    expected_radius = np.sqrt(reference.search(x.astype(np.float32), 6)[0][:, 5])
    monkeypatch.setattr(faiss, "IndexFlatL2", None)  # the numpy path must not touch faiss
    w = tail_weights(x, alpha=1.0 / 8, k=5)
    log_w = np.log(expected_radius)
    expected = np.exp(np.clip(log_w - np.median(log_w), -np.log(10), np.log(10)))
    assert np.allclose(w, expected / expected.mean(), rtol=1e-4)


def test_only_running_children_count_as_busy():
    import multiprocessing as mp
    import time

    ctx = mp.get_context("spawn")
    sleeper = ctx.Process(target=time.sleep, args=(30,))
    sleeper.start()
    try:
        deadline = time.monotonic() + 20  # past its start-up it sleeps: alive, waiting, its core free
        seen_idle = False  # one reading of 0 is enough: another test's child may still wake up now and then
        while not seen_idle and time.monotonic() < deadline:
            seen_idle = threads.busy_children() == 0
            time.sleep(0.1)
        assert sleeper.is_alive() and seen_idle
    finally:
        sleeper.kill()
        sleeper.join()
