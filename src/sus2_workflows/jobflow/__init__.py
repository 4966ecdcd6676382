"""jobflow adapter: thin jobs and Makers around the engine-neutral steps."""

from .makers import (ActiveLearningMaker, CurateDatasetMaker, DBSSelectionMaker, EosScreeningMaker, LabelMaker,
                     Sus2CampaignMaker, TrainSus2Maker)

__all__ = ["ActiveLearningMaker", "CurateDatasetMaker", "DBSSelectionMaker", "EosScreeningMaker", "LabelMaker",
           "Sus2CampaignMaker", "TrainSus2Maker"]
