"""Bounded per-subject physiological parameters, learned together with the network."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "DEFAULT_PARAMETER_SPECS",
    "EMG_LEVEL_SPEC",
    "ParameterSpec",
    "SubjectParameters",
    "curve_parameter_specs",
    "subject_parameter_specs",
]


@dataclass(frozen=True)
class ParameterSpec:
    """A bounded parameter: ``value = lower + (upper - lower) * sigmoid(theta)``.

    Attributes
    ----------
    name : str
        Name in the field's words.
    lower, upper : float
        Physical bounds.
    nominal : float
        Value at initialisation and for a subject never seen (population value).
    per_muscle : bool
        One value per muscle (True) or one per subject (False).
    unit : str
        Physical unit, ``"1"`` when dimensionless.
    """

    name: str
    lower: float
    upper: float
    nominal: float
    per_muscle: bool
    unit: str = "1"

    def __post_init__(self) -> None:
        if not self.lower < self.nominal < self.upper:
            raise ValueError(
                f"{self.name}: nominal {self.nominal} must lie strictly inside "
                f"({self.lower}, {self.upper})."
            )


DEFAULT_PARAMETER_SPECS: tuple[ParameterSpec, ...] = (
    ParameterSpec("max_isometric_force_scale", 0.5, 2.0, 1.0, True),
    ParameterSpec("optimal_fiber_length_scale", 0.8, 1.2, 1.0, True),
    ParameterSpec("tendon_slack_length_scale", 0.9, 1.1, 1.0, True),
    ParameterSpec("shape_factor", -3.0, 0.0, -0.1, True),
    ParameterSpec("g1", -0.95, 0.0, -0.5, False),
    ParameterSpec("g2", -0.95, 0.0, -0.5, False),
    ParameterSpec("delay", 0.010, 0.100, 0.040, False, "s"),
    ParameterSpec("moment_arm_scale", 0.8, 1.2, 1.0, False),
)
"""The 32 parameters per subject of method.md section 3 for 7 muscles (4 x 7 + 4)."""


EMG_LEVEL_SPEC = ParameterSpec("emg_level", -4.0, 4.0, 0.0, True)
"""Each subject's EMG level of a muscle no electrode records: a logit offset added to the
network's EMG of that muscle (0: the network's EMG as it is; +1 about 2.7 times a small
EMG), learned from the torque (docs/nmm.md, "The deep muscles' level"). Only the muscles
without EMG in fit use it (:class:`~deepemg.nmm_module.NeuralMusculoskeletalModule`'s
``levelled``); the others' stay at 0."""


def curve_parameter_specs(law, names=None) -> tuple[ParameterSpec, ...]:
    """Specs of a muscle law's curve-shape scales, one per muscle, nominal 1.

    Each law parameter ``p`` of ``law.curve_shape_parameters`` (e.g. the rigid-tendon
    DeGroote-Fregly law's ``active_force_width_scale``, ``passive_fiber_strain``,
    ``max_contraction_velocity``) gets a dimensionless spec ``"<p>_scale"`` bounded by the
    law's (lower, upper); the model multiplies ``p`` by it
    (:class:`~deepemg.physics.MusculoskeletalModel`).

    Parameters
    ----------
    law : MuscleLaw
        The muscle law (its ``curve_shape_parameters``).
    names : sequence of str, optional
        The law parameters to free (default: all of ``law.curve_shape_parameters``).

    Returns
    -------
    tuple of ParameterSpec

    Raises
    ------
    ValueError
        For a name the law has no curve-shape scale of.

    Examples
    --------
    >>> from deepemg.physics import get_muscle_law
    >>> specs = curve_parameter_specs(get_muscle_law("rigid_tendon_degroote_fregly"))
    >>> [(s.name, s.lower, s.upper) for s in specs][0]
    ('active_force_width_scale_scale', 0.75, 1.5)
    >>> len(DEFAULT_PARAMETER_SPECS + specs)
    11
    """
    shapes = dict(getattr(law, "curve_shape_parameters", {}))
    names = tuple(shapes) if names is None else tuple(names)
    unknown = [n for n in names if n not in shapes or n not in law.parameter_names]
    if unknown:
        raise ValueError(
            f"The muscle law {law.name!r} has no curve-shape scale of {unknown}; its curve-shape "
            f"parameters are {sorted(shapes)}."
        )
    return tuple(
        ParameterSpec(f"{name}_scale", float(shapes[name][0]), float(shapes[name][1]), 1.0, True)
        for name in names
    )


def subject_parameter_specs(
    law, curve_parameters: bool = False, emg_level: bool = False
) -> tuple[ParameterSpec, ...]:
    """The subject parameters of a fit: :data:`DEFAULT_PARAMETER_SPECS`, with curve shapes.

    ``curve_parameters=True`` adds :func:`curve_parameter_specs` of ``law`` (21 per subject
    for the 7-muscle elbow and the rigid-tendon law: 32 -> 53; 28 with a compliant tendon);
    ``emg_level=True`` adds :data:`EMG_LEVEL_SPEC` (7 more for the elbow, 2 of them used).

    Examples
    --------
    >>> from deepemg.physics import get_muscle_law
    >>> law = get_muscle_law("compliant_tendon_degroote_fregly")
    >>> len(subject_parameter_specs(law)), len(subject_parameter_specs(law, True))
    (8, 12)
    >>> subject_parameter_specs(law, emg_level=True)[-1].name
    'emg_level'
    """
    specs = DEFAULT_PARAMETER_SPECS
    if curve_parameters:
        specs = specs + curve_parameter_specs(law)
    return (*specs, EMG_LEVEL_SPEC) if emg_level else specs


class SubjectParameters(nn.Module):
    """Per-subject parameters mapped from unconstrained tensors into physical ranges.

    Parameters
    ----------
    n_subjects : int
        Number of subjects.
    muscles : list of str
        Muscle names (for the per-muscle parameters and the read-out).
    specs : sequence of ParameterSpec, optional
        The parameters; :data:`DEFAULT_PARAMETER_SPECS` by default.
    code_dim : int, default=0
        Length of each subject's learned code (:attr:`code`, unbounded, 0 at initialisation
        and for the population), which conditions the network's EMG on the subject; 0: no
        code. It is not a physical parameter: :attr:`n_per_subject` and :meth:`table` leave
        it out, :meth:`prior` pulls it to 0, :meth:`subset` carries it.

    Examples
    --------
    >>> params = SubjectParameters(2, ["BIClong", "BRA"])
    >>> params.n_per_subject
    12
    >>> values = params(torch.tensor([0, 1, 1]))
    >>> tuple(values["max_isometric_force_scale"].shape), tuple(values["delay"].shape)
    ((3, 2), (3,))
    >>> round(float(values["delay"][0].detach()), 3)  # nominal electromechanical delay (s)
    0.04
    """

    def __init__(self, n_subjects: int, muscles: list[str], specs=None, code_dim: int = 0) -> None:
        super().__init__()
        if int(n_subjects) < 1:
            raise ValueError(f"n_subjects must be >= 1, got {n_subjects}.")
        if int(code_dim) < 0:
            raise ValueError(f"code_dim must be >= 0, got {code_dim}.")
        self.n_subjects = int(n_subjects)
        self.code_dim = int(code_dim)
        self.muscles = list(muscles)
        self.specs = tuple(specs if specs is not None else DEFAULT_PARAMETER_SPECS)
        self.unconstrained = nn.ParameterDict()
        for spec in self.specs:
            shape = (self.n_subjects, len(self.muscles)) if spec.per_muscle else (self.n_subjects,)
            theta = self.nominal_theta(spec, torch.zeros((), dtype=torch.float64))
            self.unconstrained[spec.name] = nn.Parameter(
                torch.full(shape, float(theta), dtype=torch.float64)
            )
        if self.code_dim:  # registered only when used: models without codes keep their keys
            self.code = nn.Parameter(torch.zeros(self.n_subjects, self.code_dim))

    @property
    def n_per_subject(self) -> int:
        """Number of parameters per subject (32 for the 7-muscle elbow)."""
        return sum(len(self.muscles) if s.per_muscle else 1 for s in self.specs)

    def codes(self, subject_index: torch.Tensor) -> torch.Tensor | None:
        """The subjects' codes ``index.shape + (code_dim,)``, or None without codes.

        float32; 0 for index -1, the population.

        Examples
        --------
        >>> params = SubjectParameters(2, ["BRA"], code_dim=3)
        >>> with torch.no_grad():
        ...     params.code[1] = 1.0
        >>> params.codes(torch.tensor([1, -1])).tolist()
        [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
        """
        if not self.code_dim:
            return None
        return self._codes(self._check_index(subject_index))

    def _codes(self, index: torch.Tensor) -> torch.Tensor | None:
        """:meth:`codes` of a checked index tensor (the hot path's, nothing read to the host)."""
        if not self.code_dim:
            return None
        index = torch.as_tensor(index, dtype=torch.long)
        code = self.code[index.clamp(min=0)]
        return code * (index >= 0).unsqueeze(-1).to(code.dtype)

    def _check_index(self, subject_index) -> torch.Tensor:
        index = torch.as_tensor(subject_index, dtype=torch.long)
        if bool(((index < -1) | (index >= self.n_subjects)).any()):
            raise IndexError(
                f"subject index out of range: {self.n_subjects} subjects (0.."
                f"{self.n_subjects - 1}, or -1 for population values)."
            )
        return index

    def forward(self, subject_index: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Physical values for the subjects in ``subject_index`` (all subjects when None).

        Returns a dict name -> tensor of shape ``index.shape + (n_muscles,)`` for per-muscle
        parameters and ``index.shape`` for the others. An index of -1 gives the nominal
        (population) values, for a subject not seen in training.
        """
        index = None if subject_index is None else self._check_index(subject_index)
        return self._values(index)

    def _values(self, index: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """:meth:`forward` of a checked index tensor (the hot path's, nothing read to the host).

        The training module and the prediction-time correction call it at every step; the
        subject index is checked once, where it enters (the estimator, ``correct_emg``).
        """
        if index is not None:
            index = torch.as_tensor(index, dtype=torch.long)
        values = {}
        for spec in self.specs:
            theta = self.unconstrained[spec.name]
            if index is not None:
                nominal = torch.logit(
                    torch.tensor(
                        (spec.nominal - spec.lower) / (spec.upper - spec.lower),
                        dtype=theta.dtype,
                        device=theta.device,
                    )
                )
                theta = torch.where(
                    (index >= 0).reshape(index.shape + (1,) * (theta.ndim - 1)),
                    theta[index.clamp(min=0)],
                    nominal,
                )
            values[spec.name] = spec.lower + (spec.upper - spec.lower) * torch.sigmoid(theta)
        return values

    def subset(self, rows) -> SubjectParameters:
        """New parameters for ``len(rows)`` subjects.

        Subject ``rows[k]``'s values, or the nominal values where ``rows[k]`` is None. Nothing
        is shared with ``self``.

        Examples
        --------
        >>> params = SubjectParameters(2, ["BRA"])
        >>> with torch.no_grad():
        ...     params.unconstrained["delay"][1] = 2.0
        >>> [round(float(d), 4) for d in params.subset([1, None])(None)["delay"].detach()]
        [0.0893, 0.04]
        """
        out = SubjectParameters(len(rows), self.muscles, self.specs, self.code_dim)
        for k, row in enumerate(rows):
            if row is not None:
                out.copy_subject(k, self, row)
        return out

    def copy_subject(self, row: int, source: SubjectParameters, source_row: int) -> None:
        """Set subject ``row``'s parameters (and code) to ``source``'s subject ``source_row``."""
        with torch.no_grad():
            for name, theta in source.unconstrained.items():
                self.unconstrained[name][row] = theta[source_row]
            if self.code_dim:
                self.code[row] = source.code[source_row]

    def nominal_theta(self, spec: ParameterSpec, like: torch.Tensor) -> torch.Tensor:
        """The unconstrained value that maps to ``spec.nominal``."""
        fraction = (spec.nominal - spec.lower) / (spec.upper - spec.lower)
        return torch.logit(torch.tensor(fraction, dtype=like.dtype, device=like.device))

    def prior(self) -> torch.Tensor:
        """Mean squared deviation of the unconstrained parameters from their nominal values.

        Plus the mean squared code (with codes).
        """
        deviations = [
            (
                (self.unconstrained[s.name] - self.nominal_theta(s, self.unconstrained[s.name]))
                ** 2
            ).mean()
            for s in self.specs
        ]
        prior = torch.stack(deviations).mean()
        if self.code_dim:
            prior = prior + (self.code.double() ** 2).mean()
        return prior

    def table(self, subjects: list | None = None) -> list[dict]:
        """One row per subject and parameter, in physical units (for reports and pandas).

        Each row has ``subject``, ``parameter``, ``muscle`` (``None`` for per-subject ones),
        ``value``, ``unit``, ``lower`` and ``upper``.
        """
        subjects = list(subjects) if subjects is not None else list(range(self.n_subjects))
        with torch.no_grad():
            values = self.forward()
        rows = []
        for s, subject in enumerate(subjects):
            for spec in self.specs:
                value = values[spec.name][s]
                for m, muscle in enumerate(self.muscles if spec.per_muscle else [None]):
                    rows.append(
                        {
                            "subject": subject,
                            "parameter": spec.name,
                            "muscle": muscle,
                            "value": float(value[m] if spec.per_muscle else value),
                            "unit": spec.unit,
                            "lower": spec.lower,
                            "upper": spec.upper,
                        }
                    )
        return rows
