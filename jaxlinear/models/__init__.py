"""Whole models built from jaxlinear layers, laid out as their torch references so that
:func:`jaxlinear.interop.from_torch` ports pretrained weights in one call."""

from jaxlinear.models.bert import Bert as Bert
from jaxlinear.models.bert import BertConfig as BertConfig
from jaxlinear.models.bert import BertOutput as BertOutput
from jaxlinear.models.bert import sentence_embedding as sentence_embedding

__all__ = ["Bert", "BertConfig", "BertOutput", "sentence_embedding"]
