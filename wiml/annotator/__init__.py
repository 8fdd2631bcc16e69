"""The annotator's core without Qt (testable headless); :mod:`wiml.gui` puts widgets on top of it.

* :mod:`wiml.annotator.loading` - open a PNG/JPEG slice, a NIfTI volume or a DICOM series for annotation and
  find its ground truth.
* :mod:`wiml.annotator.annotation` - :class:`SliceAnnotation`, one slice's session, masks, clicks, times,
  Dice/IoU.
* :mod:`wiml.annotator.controller` - :class:`AnnotationController`, the annotation state and its actions
  (open, segment, click, undo, clear, save), returning :class:`Snapshot` objects for the widgets.
* :mod:`wiml.annotator.recovery` - the autosaved recovery file of unsaved work (the result folder itself is
  :mod:`wiml.data.wia_result`).
* :mod:`wiml.annotator.overlay` - windowing to 8-bit, mask contours, CAM colours.
* :mod:`wiml.annotator.remote` - refinement sessions served by a helper process (the GIL never stalls the
  GUI).

Layering: this package imports from the library below it (data, interactive, cam, evaluation, training) and
never from :mod:`wiml.gui`, :mod:`wiml.cli` or Qt.
"""
