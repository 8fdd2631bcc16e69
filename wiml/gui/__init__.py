"""The WIA annotator's widgets (``python WIA/main.py``): the only WIML package that imports Qt.

The state and actions live Qt-free in :mod:`wiml.annotator`; this package shows them:
:mod:`wiml.gui.worker` (actions on one worker ``QThread``), :mod:`wiml.gui.canvas` and :mod:`wiml.gui.window`
(the widgets), :mod:`wiml.gui.app` (arguments and window set-up; the command line is
:mod:`wiml.cli.annotate`). ``import wiml.gui`` itself imports nothing from Qt.
"""
