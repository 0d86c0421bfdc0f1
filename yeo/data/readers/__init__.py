"""One reader per annotation format, each a module of its own: ``yolo`` (a data.yaml, or
images/ + labels/), ``voc`` (Pascal VOC XML), ``coco`` (COCO JSON) and ``custom`` (a user's
reader function). Each returns a :class:`yeo.data.model.SourceDataset`, with label problems
as :class:`yeo.data.model.Fault` records; a new format is a new module here and one line in
:func:`yeo.data.sources.convert`."""
