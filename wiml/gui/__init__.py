"""The WIA annotator (``python WIA/main.py``): the only WIML package that imports Qt.

Qt-free layer (testable headless):

* :mod:`wiml.gui.loading` - open a PNG/JPEG slice, a NIfTI volume or a DICOM series for annotation and find
  its ground truth in a ``label/`` folder.
* :mod:`wiml.gui.annotation` - :class:`SliceAnnotation`, one slice's session, masks, clicks, times, Dice/IoU.
* :mod:`wiml.gui.controller` - :class:`AnnotationController`, the annotation state and its actions (open,
  segment, click, undo, clear, save), returning :class:`Snapshot` objects for the widgets.
* :mod:`wiml.gui.results` - writers of ``result/{CAM,initial_mask,strong_label,recording}``.
* :mod:`wiml.gui.overlay` - windowing to 8-bit, mask contours, CAM colours.
* :mod:`wiml.gui.remote` - refinement sessions served by a helper process (the GIL never stalls the GUI).

Qt layer: :mod:`wiml.gui.worker` (actions on one worker ``QThread``), :mod:`wiml.gui.canvas` and
:mod:`wiml.gui.window` (the widgets), :mod:`wiml.gui.app` (arguments and window set-up; the command line is
:mod:`wiml.cli.annotate`). ``import wiml.gui`` itself imports nothing from Qt.
"""
