{{ rejected_rows('master', 'locations', 'stg_master__locations__validated') }}
