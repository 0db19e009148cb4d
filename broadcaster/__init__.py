"""broadcaster: commune loudspeaker and SMS broadcasting for administrative-reform plans."""

__version__ = "0.1.0"
