"""The native (C) link element and its benchmark traffic tool, compiled by :mod:`.build`."""
