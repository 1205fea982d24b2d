"""roles/backup: backup sets of the data services in the profile's bucket, restores, restore drills
(run on the controller; the services' own parts are in their roles' `backup.py`)."""

#: Host groups this role is applied to.
APPLIES_TO = ("controller",)
