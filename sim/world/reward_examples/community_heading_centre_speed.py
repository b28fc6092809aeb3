import math


def reward_function(params):
    '''
    Community style: stay near the centre, point the car along the track, and go fast where the track is
    straight. The direction of the track is the line between the two closest waypoints.
    '''
    if params['is_offtrack'] or not params['all_wheels_on_track']:
        return 1e-3

    waypoints = params['waypoints']
    previous_point = waypoints[params['closest_waypoints'][0]]
    next_point = waypoints[params['closest_waypoints'][1]]
    track_direction = math.degrees(math.atan2(next_point[1] - previous_point[1], next_point[0] - previous_point[0]))
    direction_diff = abs(track_direction - params['heading'])
    if direction_diff > 180:
        direction_diff = 360 - direction_diff

    # Centre: 1 on the centre line, 0 at the border.
    centre = 1.0 - min(1.0, params['distance_from_center'] / (0.5 * params['track_width']))
    # Heading: 1 when aligned, 0 at 30 degrees or more off.
    heading = max(0.0, 1.0 - direction_diff / 30.0)
    # Speed bonus on straights (small steering), as racers write it.
    MAX_SPEED = 3.0
    speed = params['speed'] / MAX_SPEED
    straight = abs(params['steering_angle']) < 10

    reward = 0.4 * centre + 0.4 * heading + (0.6 if straight else 0.3) * speed
    return float(max(reward, 1e-3))
