"""`/v1/people`: people, acting officials (Plh/Plt), passwords and TOTP enrolment."""
