"""Back into OpenSim: a fitted subject's model and excitations as files OpenSim reads.

The script

1. simulates one subject lifting (``make_elbow_lifting``: 3 trials of 2 s) and fits a tiny
   ``NMMRegressor`` on it (seconds; a real fit trains longer);
2. writes the subject's personalised OpenSim model, ``<subject>.osim``
   (``NMMRegressor.export_subject``): the built-in elbow with the subject's maximum isometric
   forces, optimal fibre lengths and tendon slack lengths, and an XML comment recording what
   OpenSim cannot hold (shape factor, activation dynamics, delay, moment-arm scale);
3. writes the first trial's predicted excitations of all 7 muscles, deep ones included, as an
   OpenSim controls file, ``<subject>_trial01_controls.sto``, and the activations as a states
   file, ``<subject>_trial01_states.sto`` (``deepemg.io.write_muscle_storage``);
4. checks them with OpenSim itself: loads the model, drives it with the controls file through
   a ``PrescribedController``, and prints what OpenSim reads back.

Run: ``python examples/export_to_opensim.py out_folder`` (about 10 s on 2 cores); add
``--overwrite`` to replace the files of an earlier run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import opensim as osim

from deepemg import NMMRegressor
from deepemg.datasets import make_elbow_lifting
from deepemg.io import write_muscle_storage
from deepemg.opensim import ELBOW_MODEL_PATH, load_model, read_export_notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where to write the files (created)")
    parser.add_argument("--overwrite", action="store_true", help="replace earlier files")
    args = parser.parse_args()
    folder = args.folder
    folder.mkdir(parents=True, exist_ok=True)

    data = make_elbow_lifting(
        n_subjects=1, n_trials=3, duration=2.0, random_state=0, progress=False, cache=False
    )
    nmm = NMMRegressor(max_epochs=5, window=50, d_model=16, n_heads=2, n_layers=1, random_state=0)
    nmm.fit(data.X, data.y, subject_ids=data.groups)
    subject = nmm.subjects_[0]

    # 1. the subject's OpenSim model
    model_path = folder / f"{subject}.osim"
    if model_path.exists() and not args.overwrite:
        raise SystemExit(f"{model_path} exists: pass --overwrite to replace it.")
    nmm.export_subject(subject, model_path, overwrite=args.overwrite)
    original, personal = load_model(ELBOW_MODEL_PATH), load_model(model_path)
    print(f"{model_path}: maximum isometric force (N), the file's -> subject {subject}'s")
    for muscle in nmm.muscles_:
        before = original.getMuscles().get(muscle).getMaxIsometricForce()
        after = personal.getMuscles().get(muscle).getMaxIsometricForce()
        print(f"  {muscle:9s} {before:8.1f} -> {after:8.1f}")
    notes = read_export_notes(model_path)
    print(f"  recorded only in the notes: {', '.join(notes['not_in_opensim'])}")

    # 2. the first trial's excitations (controls) and activations (states)
    trial = data.X[:1]
    time = np.arange(trial.shape[1]) / nmm.rate
    excitation = np.clip(nmm.predict(trial, subject_ids=[subject])[0], 0.0, 1.0)
    activation = np.clip(nmm.predict_activation(trial, subject_ids=[subject])[0], 0.0, 1.0)
    controls = write_muscle_storage(
        folder / f"{subject}_trial01_controls.sto", time, excitation, nmm.muscles_
    )
    states = write_muscle_storage(
        folder / f"{subject}_trial01_states.sto",
        time,
        activation,
        nmm.muscles_,
        kind="activation",
        model=model_path,
    )
    print(f"{controls}: columns {list(osim.TimeSeriesTable(str(controls)).getColumnLabels())}")
    print(f"{states}: columns {list(osim.TimeSeriesTable(str(states)).getColumnLabels())[:2]} ...")

    # 3. OpenSim drives the subject's model with the controls file
    personal.addController(osim.PrescribedController(str(controls)))
    state = personal.initSystem()
    state.setTime(float(time[100]))
    personal.realizeVelocity(state)
    read = personal.getControls(state)
    deep = [nmm.muscles_.index(m) for m in ("BRA", "TRImed")]
    print(
        f"OpenSim's controls at t = {time[100]:.2f} s: BRA {read.get(deep[0]):.3f}, "
        f"TRImed {read.get(deep[1]):.3f} (deepemg: {excitation[100, deep[0]]:.3f}, "
        f"{excitation[100, deep[1]]:.3f})"
    )


if __name__ == "__main__":
    main()
