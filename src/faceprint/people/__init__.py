"""A photo library: faces grouped into people as photos arrive, named and corrected by the user."""

from faceprint.people.edits import LibraryEditError, UnknownInLibraryError
from faceprint.people.library import AddReport, Detected, Library, PeopleConfig, open_library
from faceprint.people.similarity import CASIA_WEBFACE, Similarity, fit_similarity
from faceprint.people.tables import Face, Person, Photo

__all__ = ["AddReport", "CASIA_WEBFACE", "Detected", "Face", "Library", "LibraryEditError", "PeopleConfig", "Person", "Photo",
           "Similarity", "UnknownInLibraryError", "fit_similarity", "open_library"]
