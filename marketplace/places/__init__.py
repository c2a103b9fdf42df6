"""Places without coordinates: a typed town or address, or the phone's position
(service.py: the gazetteer and the geocoder; views.py: GET /places and the form helper)."""
