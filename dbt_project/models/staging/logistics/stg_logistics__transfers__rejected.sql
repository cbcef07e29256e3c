{{ rejected_rows('logistics', 'transfers', 'stg_logistics__transfers__validated') }}
