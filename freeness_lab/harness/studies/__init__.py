"""The registry of studies: name -> :class:`~freeness_lab.harness.studies.base.Study`.

Adding a study is one module defining its ``STUDY`` (see :mod:`.base`) and one line below.
"""

from freeness_lab.harness.studies import (
    chhaibi2022,
    chhaibi2022_training,
    freeness,
    hayase_karakida2021,
    hayase_karakida2021_training,
    pennington2017,
    pennington2018,
    spectral_check,
    spectrum,
)
from freeness_lab.harness.studies.base import ReportInput, Study, StudyReport

#: every study a run may contain (``experiment.studies``), by name
STUDIES: dict[str, Study] = {s.name: s for s in (
    spectrum.STUDY,
    freeness.STUDY,
    pennington2017.STUDY,
    pennington2018.STUDY,
    hayase_karakida2021.STUDY,
    hayase_karakida2021_training.STUDY,
    spectral_check.STUDY,
    chhaibi2022.STUDY,
    chhaibi2022_training.STUDY,
)}

__all__ = ["STUDIES", "ReportInput", "Study", "StudyReport"]
