"""Check the test suite by mutation: break the learning on purpose and see a default test fail.

Each mutant copies the package and the tests to a temporary folder, changes one line of the
source, and runs the default tests that guard learning. A mutant the tests do not catch
("survived") means the suite no longer guards that part. Prints one line per mutant and exits
non-zero if any survived.

    python benchmarks/mutants.py            # all mutants (about 1-2 minutes each on 2 cores)
    python benchmarks/mutants.py --list     # what each mutant changes
    python benchmarks/mutants.py blind      # one mutant
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = [
    "tests/estimators/test_learning.py",
    "tests/estimators/test_regressor.py",
    "tests/estimators/test_loss.py",
]

MUTANTS = {
    "blind": (
        "the Transformer is blinded: its input is zeroed, so the EMG depends on time only",
        "deepemg/network.py",
        "tokens = self.embed(x)",
        "tokens = self.embed(x * 0)",
    ),
    "no-physics": (
        "the physics (torque) term is dropped from the loss",
        "deepemg/nmm_module.py",
        "+ self.physics_weight * physics",
        "+ 0.0 * physics",
    ),
    "frozen-subjects": (
        "the subject parameters are frozen in fit (learning rate 0)",
        "deepemg/training.py",
        '("subject_parameters.*", {"weight_decay": 0.0, "lr": 10 * params["lr"]})',
        '("subject_parameters.*", {"weight_decay": 0.0, "lr": 0.0})',
    ),
    "one-drive": (
        'physics_drive="both" drives the muscles by the measured EMG only',
        "deepemg/nmm_module.py",
        'if self.drive == "both":',
        "if False:",
    ),
    "no-code": (
        "the subject's code never reaches the network (no personalised EMG)",
        "deepemg/network.py",
        "if code is not None:",
        "if False:",
        ["tests/estimators/test_personalised.py"],
    ),
    "no-correction": (
        "the prediction-time correction never moves the EMG (its Gauss-Newton steps discarded)",
        "deepemg/correction.py",
        "        delta, loss = yield from _gauss_newton_iteration(problem, delta, loss)",
        "        _ = yield from _gauss_newton_iteration(problem, delta, loss)",
    ),
    "gradient-without-filter": (
        "the Gauss-Newton gradient leaves out the activation filter (a wrong Jacobian)",
        "deepemg/correction.py",
        "slope * drive.filter.transpose(gain * (torque - problem.torque).unsqueeze(1))",
        "slope * (gain * (torque - problem.torque).unsqueeze(1))",
        ["tests/estimators/test_correction.py"],
    ),
    "adam-reference-frozen": (
        "the Adam reference solver never moves the EMG (learning rate 0)",
        "deepemg/correction.py",
        "optimizer = torch.optim.Adam([delta], lr=CORRECTION_LR)",
        "optimizer = torch.optim.Adam([delta], lr=0.0)",
        ["tests/estimators/test_correction.py"],
    ),
    "loads-leak": (
        "leave one subject out trains on the other subjects' loads beyond the training range",
        "deepemg/benchmark/protocol.py",
        "np.flatnonzero((groups != s) & ~beyond)",
        "np.flatnonzero(groups != s)",
        ["tests/evaluation/test_benchmark.py"],
    ),
    "fitted-with-unchecked": (
        "a parameter the fitted state is built for (window, rate, ...) may change after fit",
        "deepemg/_state.py",
        "            if not same_value(getattr(self, name), value):",
        "            if False:",
        ["tests/estimators/test_estimator_hostile.py"],
    ),
    "labels-to-strings": (
        "personalize turns the subject labels into numpy's array of them (ints become str)",
        "deepemg/regressor.py",
        "    return subject_array(subjects)  # each label as the user gave it",
        "    return np.asarray(subjects)",
        ["tests/estimators/test_estimator_hostile.py"],
    ),
    "population-emg-written": (
        "deepemg predict writes the EMG corrected with the population's muscle parameters",
        "deepemg/cli.py",
        "        emg = nmm.predict(data.X, ids)[0]",
        "        emg = nmm.predict(data.X)[0]",
        ["tests/command/test_cli_hostile.py", "-k", "own_muscle_model"],
    ),
    "foreign-files-replaced": (
        "an --out folder holding the user's files is replaced whole",
        "deepemg/cli.py",
        '    foreign = entries if marker is None or "state" in marker else _foreign(out, marker)',
        "    foreign = []",
        ["tests/command/test_cli_hostile.py", "-k", "users_files or file_added"],
    ),
    "no-size-limits": (
        "a model file's entries are read whatever their size (a zip bomb inflates)",
        "deepemg/persistence.py",
        "entry_limit, total_limit = MAX_ENTRY_BYTES, MAX_TOTAL_BYTES",
        "entry_limit, total_limit = 2**62, 2**62",
        ["tests/estimators/test_persistence_hostile.py"],
    ),
    "members-not-forwarded": (
        "an NMMEnsemble's members keep the parameters they were fitted with after set_params",
        "deepemg/ensemble.py",
        "            member.set_params(**forwarded)",
        "            pass",
        ["tests/estimators/test_uncertainty.py", "-k", "follow"],
    ),
    "host-read-per-batch": (
        "each loss term is read back to the host at every training batch (a GPU stall)",
        "deepemg/nmm_module.py",
        "            self.history.record_batch(prefix + name, value.detach())",
        "            self.history.record_batch(prefix + name, float(value.detach()))",
        ["tests/physics/test_hot_path.py"],
    ),
    "adequacy-silent": (
        "the model-adequacy check never finds a subject poor (no ModelAdequacyWarning)",
        "deepemg/adequacy.py",
        '    poor = [s for s, a in adequacy.items() if a.verdict == "poor"]',
        "    poor = []",
        ["tests/estimators/test_adequacy.py"],
    ),
    "scales-ignored": (
        "the subject's '<parameter>_scale' values never reach the muscle law (curve shapes too)",
        "deepemg/physics/model.py",
        "values[name] = values[name] * _align(params[key], lead_ndim, True, dtype)",
        "values[name] = values[name]",
        ["tests/physics/test_curve_parameters.py"],
    ),
    "from-model-ignored": (
        "muscle_law='from_model' is not looked up in the file (an unknown law name)",
        "deepemg/opensim/builder.py",
        "    if isinstance(muscle_law, str) and muscle_law == FROM_MODEL:",
        "    if False:",
        ["tests/physics/test_thelen_law.py", "-k", "from_model"],
    ),
    "no-synergist": (
        "the synergist term is dropped from the loss (the deep levels left to the effort)",
        "deepemg/nmm_module.py",
        "+ self.synergist_weight * synergist",
        "+ 0.0 * synergist",
        ["tests/estimators/test_learning.py", "-k", "synergist"],
    ),
    "no-synergist-level": (
        "the synergist level term is dropped from the loss (the torque-trained level left alone)",
        "deepemg/nmm_module.py",
        "+ self.synergist_level_weight * synergist_level",
        "+ 0.0 * synergist_level",
        ["tests/estimators/test_learning.py", "-k", "synergist_level"],
    ),
    "synergist-level-absolute": (
        "the synergist level gap taken in EMG units, not in log ratio",
        "deepemg/nmm_module.py",
        "            if ratio:\n",
        "            if False:\n",
        ["tests/estimators/test_loss.py", "-k", "synergist_level"],
    ),
    "personalize-without-synergists": (
        "personalize fits a new subject's deep level without the synergist level term",
        "deepemg/training.py",
        'synergist_level_weight=float(params.get("synergist_level_weight", 0.0)),',
        "synergist_level_weight=0.0,",
        ["tests/estimators/test_learning.py", "-k", "personalize_holds"],
    ),
    "old-file-new-terms": (
        "a model file from before the synergist level term is loaded with today's default",
        "deepemg/persistence.py",
        '    params.setdefault("synergist_level_weight", 0.0)  # and before its level term (< 0.6)',
        "    pass",
        ["tests/estimators/test_persistence_hostile.py", "-k", "synergist_terms"],
    ),
    "stale-curves": (
        "the Millard curves are reused whatever their parameters (the cache keyed by dtype only)",
        "deepemg/physics/millard.py",
        "    key = (rigid_tendon, like.dtype, like.device, tuple(v.shape for v in values), flat)",
        "    key = (rigid_tendon, like.dtype)",
        ["tests/physics/test_millard_law.py", "-k", "reused"],
    ),
    "equilibrium-unstarted": (
        "the compliant Millard search starts from the tendon curve's chord (no Newton steps on it)",
        "deepemg/physics/millard.py",
        "TENDON_INVERSION_STEPS = 4",
        "TENDON_INVERSION_STEPS = 0",
        ["tests/physics/test_millard_law.py", "-k", "starts_near"],
    ),
    "conversion-silent": (
        "a model file's muscles converted to another law without a MuscleConversionWarning",
        "deepemg/opensim/builder.py",
        "        _warn_converted(data, path, coordinate, law, locked_key)",
        "        pass",
        ["tests/physics/test_thelen_law.py", "-k", "conversion"],
    ),
    "emg-unread": (
        "the network never reads X's surface EMG (emg_inputs ignored)",
        "deepemg/features.py",
        "    if not emg_channels:\n        return sequences.inputs",
        "    if True:\n        return sequences.inputs",
    ),
    "torque-reshapes-emg": (
        'physics_trains="parameters" ignored: the torque term trains the network too',
        "deepemg/nmm_module.py",
        'detached = self.physics_trains == "parameters"  # the level still trained, not the shape',
        "detached = False",
    ),
    "level-untrained": (
        "the torque no longer trains the deep muscles' EMG level (the levelled drive detached)",
        "deepemg/nmm_module.py",
        "drive = torch.sigmoid(logits.detach() + offset) if detached else emg",
        "drive = torch.sigmoid((logits + offset).detach()) if detached else emg",
        ["tests/estimators/test_learning.py", "-k", "subject_parameters_not_the_network"],
    ),
    "auto-trusts-all": (
        'predict_physics="auto" corrects every subject, whatever its model adequacy',
        "deepemg/adequacy.py",
        '    trusted = np.array([v != "poor" for v in verdicts] + [population], dtype=bool)',
        "    trusted = np.ones(len(verdicts) + 1, dtype=bool)",
        ["tests/estimators/test_adequacy.py", "-k", "auto"],
    ),
    "untrusted-keeps-level": (
        "a subject the adequacy check flags keeps its torque-fitted EMG level (the network "
        "alone is no longer without what the torque taught)",
        "deepemg/nmm_module.py",
        "            own = torch.sigmoid(logits - self.level_shift.to(logits))",
        "            own = emg",
        [
            "tests/estimators/test_adequacy.py",
            "tests/estimators/test_learning.py",
            "-k",
            "auto or centred",
        ],
    ),
    "members-start-together": (
        "the ensemble's members all start the muscles without EMG at the template's level",
        "deepemg/ensemble.py",
        "            spread = float(self.deep_start_spread) * np.linspace(-1.0, 1.0, k)",
        "            spread = 0.0 * np.linspace(-1.0, 1.0, k)",
        ["tests/estimators/test_uncertainty.py", "-k", "apart"],
    ),
    "deep-start-ignored": (
        "deep_start no longer moves where the muscles without EMG start",
        "deepemg/training.py",
        '            network.head.bias[list(levelled)] += float(params.get("deep_start", 0.0))',
        "            network.head.bias[list(levelled)] += 0.0",
        ["tests/estimators/test_learning.py", "-k", "deep_start"],
    ),
}
"""Name -> (what, file, line, mutated line[, tests]): the default tests are :data:`TESTS`."""


def run(name: str, workdir: Path) -> tuple[str, float]:
    _, path, old, new, *tests = MUTANTS[name]
    tests = tests[0] if tests else TESTS
    target = workdir / path
    text = target.read_text()
    if text.count(old) != 1:
        raise SystemExit(f"mutant {name}: the line to change is not once in {path}; update me.")
    target.write_text(text.replace(old, new))
    env = {**os.environ, "PYTHONPATH": str(workdir), "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )
    target.write_text(text)
    last = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
    verdict = "killed" if result.returncode != 0 else "SURVIVED"
    return f"{verdict:<9} {name:<16} {last}", time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mutants", nargs="*", choices=[[], *MUTANTS], default=[])
    parser.add_argument("--list", action="store_true", help="describe the mutants and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, (what, path, *_) in MUTANTS.items():
            print(f"{name:<16} {path}: {what}")
        return 0
    survived = 0
    with tempfile.TemporaryDirectory(prefix="deepemg-mutants-") as tmp:
        workdir = Path(tmp)
        for part in ("deepemg", "baselines", "tests", "pyproject.toml"):
            source = ROOT / part
            if source.is_dir():
                skip = shutil.ignore_patterns("__pycache__")
                shutil.copytree(source, workdir / part, ignore=skip)
            else:
                shutil.copy2(source, workdir / part)
        for name in args.mutants or list(MUTANTS):
            line, seconds = run(name, workdir)
            survived += line.startswith("SURVIVED")
            print(f"{line}  ({seconds:.0f} s)", flush=True)
    print(f"{survived} of {len(args.mutants or MUTANTS)} mutants survived")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
