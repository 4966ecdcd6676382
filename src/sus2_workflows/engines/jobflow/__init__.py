"""jobflow adapter: Makers whose jobs each call one stage of :mod:`sus2_workflows.campaign`, and the managers that
run their flows (``run_locally``, FireWorks, jobflow-remote)."""

from .makers import (ActiveLearningMaker, AdsorptionScreeningMaker, CampaignResultMaker, CurateDatasetMaker,
                     DBSSelectionMaker, EosScreeningMaker, LabelMaker, MofScreeningMaker, ScreeningModelMaker,
                     Sus2CampaignMaker, TrainSus2Maker)

__all__ = ["ActiveLearningMaker", "AdsorptionScreeningMaker", "CampaignResultMaker", "CurateDatasetMaker",
           "DBSSelectionMaker", "EosScreeningMaker", "LabelMaker", "MofScreeningMaker", "ScreeningModelMaker",
           "Sus2CampaignMaker", "TrainSus2Maker"]
