{{ rejected_rows('master', 'suppliers', 'stg_master__suppliers__validated') }}
