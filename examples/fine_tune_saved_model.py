"""Fine-tune a saved NMM on a new session of the same subject, keeping checkpoints.

A subject comes back for a second session. The model is fitted on the first session, with an
``NMMCheckpoint`` keeping the epoch of lowest training loss in a model file, and saved. Later
it is loaded (``NMMRegressor.load``: deepemg's own format, no pickle) and its training goes on
over the second session with ``warm_start=True``: the fitted network and subject parameters
continue, at a lower learning rate, on a fresh cosine schedule, and ``history_`` goes on.
The surface-EMG R² (``score``: the measured muscles) on a third, held-out recording is
printed before and after, beside a model fitted on the second session alone. (Measured
2026-12-04 on the 2-core development machine: 0.550 before, 0.643 after, -0.304 for the second
session alone. Fine-tuning gains where the first session left the model short of data: with
200 epochs on session 1 and 60 on session 2 it went from 0.792 to 0.754.)

The sessions are simulated (``make_elbow_lifting``, one subject, seed 0): trials 0-1 are the
first session, 2-3 the second, 4-5 are held out. Everything written (the simulated data's
cache, the model files) goes into a temporary folder, removed at the end, or into ``--out``.

Run: ``python examples/fine_tune_saved_model.py`` (about 20 s on one core; ``--epochs`` and
``--fine-tune-epochs`` trade time for accuracy; ``--out FOLDER`` keeps the files).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _small_nmm import SMALL_NMM

from deepemg import NMMRegressor
from deepemg.datasets import make_elbow_lifting
from deepemg.nmm_module import NMMCheckpoint

SETTINGS = dict(
    SMALL_NMM,
    batch_size=4,
    predict_physics="none",  # the network's EMG alone: the score of what fitting learnt
)


def run(folder: Path, epochs: int, fine_tune_epochs: int) -> None:
    start = time.perf_counter()
    data = make_elbow_lifting(  # each session lifts 1 and 5 kg
        n_subjects=1,
        n_trials=6,
        duration=2.0,
        loads=(1, 5),
        random_state=0,
        progress=False,
        data_home=folder,
    )
    first, second, held_out = [0, 1], [2, 3], [4, 5]
    subject = [str(data.groups[0])] * 2

    # Session 1: fit, keeping the best epoch in a checkpoint, and save.
    checkpoint = folder / "session1_best.deepemg"
    nmm = NMMRegressor(
        max_epochs=epochs,
        callbacks=[NMMCheckpoint(checkpoint, monitor="train_loss_best")],
        **SETTINGS,
    )
    nmm.fit(data.X[first], data.y[first], subject_ids=subject)
    best = dict(nmm.net_.callbacks_)["NMMCheckpoint"].saved_epochs_[-1]
    saved = nmm.save(folder / "session1.deepemg", overwrite=True)
    print(
        f"session 1: fitted {epochs} epochs on trials {first}; saved {saved.name}, "
        f"best epoch {best} in {checkpoint.name}"
    )

    # Session 2, later: load the model and continue its training on the new trials.
    model = NMMRegressor.load(saved)
    before = model.score(data.X[held_out], data.y[held_out])
    model.set_params(warm_start=True, max_epochs=fine_tune_epochs, lr=1e-3)
    model.fit(data.X[second], data.y[second], subject_ids=subject)
    after = model.score(data.X[held_out], data.y[held_out])
    model.save(folder / "session2.deepemg", overwrite=True)
    loss = model.history_[:, "train_loss"]
    print(
        f"session 2: {fine_tune_epochs} more epochs on trials {second} (history: "
        f"{len(loss)} epochs; loss {loss[epochs - 1]:.4f} at the end of session 1, "
        f"{loss[epochs]:.4f} at the first new epoch, {loss[-1]:.4f} at the last)"
    )
    alone = NMMRegressor(max_epochs=fine_tune_epochs, **SETTINGS)
    alone.fit(data.X[second], data.y[second], subject_ids=subject)
    fresh = alone.score(data.X[held_out], data.y[held_out])
    print(f"surface-EMG R² on the held-out trials {held_out}:")
    print(f"  saved model (session 1)           {before:.3f}")
    print(f"  fine-tuned on session 2           {after:.3f}")
    print(f"  fitted on session 2 alone         {fresh:.3f}")
    print(f"({time.perf_counter() - start:.0f} s; files in {folder})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=150, help="epochs of session 1's fit")
    parser.add_argument("--fine-tune-epochs", type=int, default=50)
    parser.add_argument("--out", type=Path, help="keep the files in this folder (created)")
    args = parser.parse_args()
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        run(args.out, args.epochs, args.fine_tune_epochs)
        return
    with tempfile.TemporaryDirectory(prefix="deepemg-fine-tune-") as folder:
        run(Path(folder), args.epochs, args.fine_tune_epochs)


if __name__ == "__main__":
    main()
