{{ rejected_rows('calendar', 'events', 'stg_calendar__events__validated') }}
